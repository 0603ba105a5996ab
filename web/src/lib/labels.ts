// "env=prod, role=db" <-> {env: "prod", role: "db"}
export function parseLabels(text: string): Record<string, string> | null {
  const out: Record<string, string> = {}
  for (const part of text.split(',')) {
    const p = part.trim()
    if (!p) continue
    const eq = p.indexOf('=')
    if (eq <= 0) return null
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim()
  }
  return out
}

export function formatLabels(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
}

/** "a, b c" -> ["a", "b", "c"] */
export function parseList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean)
}
