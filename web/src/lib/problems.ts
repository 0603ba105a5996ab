// The server's reasons for refusing a form, placed next to the fields they name.
import { ApiError } from '../api/client'

/** Kinds of rules and channels: FastAPI puts the union tag into `loc` (body.threshold.metric). */
const TAGS = new Set(['threshold', 'compound', 'absent', 'forecast', 'email', 'slack', 'discord', 'webhook', 'sms', 'alertmanager'])

export interface Problems {
  /** dotted field path ("metric", "recurring.timezone") -> reason */
  fields: Record<string, string>
  /** reasons that name no field of the form */
  form: string[]
}

/** Split an error into per-field reasons (for `known` fields) and the rest. */
export function problemsOf(err: unknown, known: readonly string[]): Problems {
  const out: Problems = { fields: {}, form: [] }
  if (!(err instanceof ApiError)) {
    out.form.push(err instanceof Error ? err.message : String(err))
    return out
  }
  const put = (path: string, msg: string) => {
    if (known.includes(path)) out.fields[path] = out.fields[path] ? `${out.fields[path]}; ${msg}` : msg
    else out.form.push(path ? `${path}: ${msg}` : msg)
  }
  if (err.problems.length) {
    for (const p of err.problems) {
      const loc = p.loc.map(String).filter((x) => x !== 'body')
      if (loc.length && TAGS.has(loc[0])) loc.shift()
      put(loc.join('.'), p.msg)
    }
    return out
  }
  // the alerts routes also answer 422/409 with "field: reason" text
  const m = /^([a-z_][a-z_.]*): (.+)$/s.exec(err.detail)
  if (m && known.includes(m[1])) put(m[1], m[2])
  else out.form.push(err.detail)
  return out
}
