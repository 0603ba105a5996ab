// The boards API (/api/v1/dashboards, src/hostpulse/server/api/dashboards.py) on the app's client.
import type { ApiClient } from '../api/client'
import type { Agg } from '../api/types'
import type { MetricKey } from '../gen/catalog'

export type WidgetType = 'timeseries' | 'stat' | 'gauge' | 'bar' | 'table' | 'processes' | 'alerts' | 'hosts'
export type Sharing = 'private' | 'view' | 'edit'

export interface Widget {
  id: string
  type: WidgetType
  title: string
  x: number
  y: number
  w: number
  h: number
  metric?: MetricKey | null
  /** A host id, `$variable`, or none (every host, up to FLEET_HOSTS). */
  host?: string | null
  labels?: Record<string, string>
  agg?: Agg
  max?: number | null
}

export interface Variable {
  name: string
  type: 'host'
  default?: string | null
}

export interface BoardSpec {
  range_s: number
  variables: Variable[]
  widgets: Widget[]
}

export interface BoardSummary {
  id: string
  name: string
  owner: string
  sharing: Sharing
  version: number
  created_ms: number
  updated_ms: number
  widgets: number
  can_edit: boolean
  can_manage: boolean
}

export interface Board extends BoardSummary {
  spec: BoardSpec
}

export interface BoardIn {
  name: string
  sharing: Sharing
  spec: BoardSpec
  version?: number | null
}

/** A board as a file (export/import); templates have this shape too, plus an id. */
export interface BoardFile {
  hostpulse_dashboard: 1
  name: string
  description?: string
  spec: BoardSpec
}

export interface Template extends BoardFile {
  id: string
}

const enc = encodeURIComponent

export class BoardsApi {
  constructor(private readonly api: ApiClient) {}

  list(): Promise<BoardSummary[]> {
    return this.api.get('/dashboards')
  }

  get(id: string): Promise<Board> {
    return this.api.get(`/dashboards/${enc(id)}`)
  }

  create(board: BoardIn): Promise<Board> {
    return this.api.post('/dashboards', board)
  }

  save(id: string, board: BoardIn): Promise<Board> {
    return this.api.put(`/dashboards/${enc(id)}`, board)
  }

  remove(id: string): Promise<void> {
    return this.api.delete(`/dashboards/${enc(id)}`)
  }

  exportFile(id: string): Promise<BoardFile> {
    return this.api.get(`/dashboards/${enc(id)}/export`)
  }

  importFile(file: BoardFile): Promise<Board> {
    return this.api.post('/dashboards/import', file)
  }

  templates(): Promise<Template[]> {
    return this.api.get('/dashboards/templates')
  }
}
