// Users, agent keys and enrollment tokens (admin only), as in /work/wt/AUTH_CONTRACT.md:
// /api/v1/users, /agent-keys, /enrollment-tokens. Times are epoch milliseconds.
import type { ApiClient, UserOut } from './client'

export type Role = UserOut['role']
export const ROLES: Role[] = ['viewer', 'editor', 'admin']
export const MIN_PASSWORD = 12

export interface UserRow {
  username: string
  role: Role
  created_at: number
}

export interface AgentKey {
  id: string
  host_id: string
  prefix: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
}

export interface RotatedKey {
  id: string
  host_id: string
  key: string
}

export interface EnrollmentToken {
  id: string
  host_id: string | null
  expires_at: number
  single_use: boolean
  uses: number
  created_at: number
}

export interface NewEnrollment {
  host_id?: string | null
  ttl_seconds?: number
  single_use?: boolean
}

export interface CreatedEnrollment {
  id: string
  token: string
  host_id: string | null
  expires_at: number
  single_use: boolean
  command: string
  install_command: string
}

const enc = encodeURIComponent

export class AdminApi {
  constructor(private readonly api: ApiClient) {}

  users(): Promise<UserRow[]> {
    return this.api.get('/users')
  }

  addUser(username: string, password: string, role: Role): Promise<UserRow> {
    return this.api.post('/users', { username, password, role })
  }

  /** Change a user; changing one's own password needs `current_password` as well. */
  updateUser(username: string, change: { role?: Role; password?: string; current_password?: string }): Promise<UserRow> {
    return this.api.patch(`/users/${enc(username)}`, change)
  }

  removeUser(username: string): Promise<void> {
    return this.api.delete(`/users/${enc(username)}`)
  }

  agentKeys(): Promise<AgentKey[]> {
    return this.api.get('/agent-keys')
  }

  revokeKey(id: string): Promise<void> {
    return this.api.post(`/agent-keys/${enc(id)}/revoke`, {})
  }

  rotateKey(id: string): Promise<RotatedKey> {
    return this.api.post(`/agent-keys/${enc(id)}/rotate`, {})
  }

  enrollmentTokens(): Promise<EnrollmentToken[]> {
    return this.api.get('/enrollment-tokens')
  }

  createEnrollment(req: NewEnrollment): Promise<CreatedEnrollment> {
    return this.api.post('/enrollment-tokens', req)
  }

  deleteEnrollment(id: string): Promise<void> {
    return this.api.delete(`/enrollment-tokens/${enc(id)}`)
  }
}
