// Settings (admin): users and roles, agent keys, enrollment tokens. A new key or token is kept
// only until the admin dismisses it: the server shows it once.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { useAdminApi } from '../api'
import type { AgentKey, CreatedEnrollment, EnrollmentToken, NewEnrollment, Role, RotatedKey, UserRow } from '../api/admin'
import { ApiError } from '../api/client'

export const useAdmin = defineStore('admin', () => {
  const users = shallowRef<UserRow[]>([])
  const keys = shallowRef<AgentKey[]>([])
  const tokens = shallowRef<EnrollmentToken[]>([])
  const loading = ref(false)
  const error = ref<string | null>(null)
  const forbidden = ref(false)
  /** Shown once, then forgotten. */
  const newKey = ref<RotatedKey | null>(null)
  const newEnrollment = ref<CreatedEnrollment | null>(null)

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    const api = useAdminApi()
    try {
      const [u, k, t] = await Promise.all([api.users(), api.agentKeys(), api.enrollmentTokens()])
      users.value = u
      keys.value = k
      tokens.value = t
      forbidden.value = false
    } catch (e) {
      forbidden.value = e instanceof ApiError && e.status === 403
      error.value = e instanceof ApiError ? e.detail : (e as Error).message
    } finally {
      loading.value = false
    }
  }

  async function addUser(username: string, password: string, role: Role): Promise<void> {
    const u = await useAdminApi().addUser(username, password, role)
    users.value = [...users.value.filter((x) => x.username !== u.username), u]
  }

  async function setRole(username: string, role: Role): Promise<void> {
    const u = await useAdminApi().updateUser(username, { role })
    users.value = users.value.map((x) => (x.username === username ? u : x))
  }

  async function resetPassword(username: string, password: string): Promise<void> {
    await useAdminApi().updateUser(username, { password })
  }

  async function removeUser(username: string): Promise<void> {
    await useAdminApi().removeUser(username)
    users.value = users.value.filter((x) => x.username !== username)
  }

  async function revokeKey(id: string): Promise<void> {
    await useAdminApi().revokeKey(id)
    keys.value = await useAdminApi().agentKeys()
  }

  async function rotateKey(id: string): Promise<void> {
    newKey.value = await useAdminApi().rotateKey(id)
    keys.value = await useAdminApi().agentKeys()
  }

  async function createEnrollment(req: NewEnrollment): Promise<void> {
    newEnrollment.value = await useAdminApi().createEnrollment(req)
    tokens.value = await useAdminApi().enrollmentTokens()
  }

  async function deleteEnrollment(id: string): Promise<void> {
    await useAdminApi().deleteEnrollment(id)
    tokens.value = tokens.value.filter((x) => x.id !== id)
    if (newEnrollment.value?.id === id) newEnrollment.value = null
  }

  return {
    users, keys, tokens, loading, error, forbidden, newKey, newEnrollment,
    load, addUser, setRole, resetPassword, removeUser, revokeKey, rotateKey, createEnrollment, deleteEnrollment,
  }
})
