// A scripted stand-in for the browser's WebSocket: the spec opens, feeds and closes it.
export class ScriptedSocket {
  static all: ScriptedSocket[] = []
  readyState = 0
  binaryType = 'blob'
  sent: string[] = []
  closed: number | null = null
  onopen: (() => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: (() => void) | null = null
  onerror: (() => void) | null = null
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this)
  }
  send(data: string) {
    this.sent.push(data)
  }
  close(code = 1000) {
    this.closed = code
    this.readyState = 3
  }
  open() {
    this.readyState = 1
    this.onopen?.()
  }
  feed(data: ArrayBuffer) {
    this.onmessage?.({ data })
  }
  drop() {
    this.readyState = 3
    this.onclose?.()
  }
}

