// Who is logged in: tokens from POST /auth/login, renewed with /auth/refresh on a 401, ended
// with /auth/logout. Kept in localStorage so a reload stays logged in. A server without
// authentication never answers 401, so the app then never asks anyone to log in.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { useApi } from '../api'
import { ApiError, type TokensOut, type UserOut } from '../api/client'

const KEY = 'hostpulse.session'

interface Saved {
  access: string
  refresh: string
  user: UserOut
}

function restore(): Saved | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Saved | null
    return s && typeof s.access === 'string' && typeof s.refresh === 'string' && s.user ? s : null
  } catch {
    return null
  }
}

export const useSession = defineStore('session', () => {
  const saved = restore()
  const access = ref<string | null>(saved?.access ?? null)
  const refreshToken = ref<string | null>(saved?.refresh ?? null)
  const user = ref<UserOut | null>(saved?.user ?? null)
  /** The server answered 401 and we hold no usable token: the login page is needed. */
  const required = ref(false)
  const loggedIn = computed(() => access.value !== null && user.value !== null)
  /** The server has no authentication routes (`/auth/me` is 404): it enforces nothing, so the
   * UI shows every control. Unknown (false) until `probe()` has answered. */
  const authless = ref(false)
  let renewing: Promise<boolean> | null = null

  function set(t: TokensOut) {
    access.value = t.access_token
    refreshToken.value = t.refresh_token
    user.value = t.user
    required.value = false
    localStorage.setItem(KEY, JSON.stringify({ access: t.access_token, refresh: t.refresh_token, user: t.user }))
  }

  function clear() {
    access.value = null
    refreshToken.value = null
    user.value = null
    localStorage.removeItem(KEY)
  }

  /** Sign in; on a server without authentication (no login route: 404) nobody needs to. */
  async function login(username: string, password: string): Promise<void> {
    try {
      set(await useApi().login(username, password))
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e
      authless.value = true
      required.value = false
    }
  }

  /** On a 401: renew the tokens once (callers share one renewal); false when that fails. */
  function renew(): Promise<boolean> {
    const token = refreshToken.value
    if (!token) {
      clear()
      required.value = true
      return Promise.resolve(false)
    }
    renewing ??= useApi()
      .refresh(token)
      .then(
        (t) => {
          set(t)
          return true
        },
        () => {
          clear()
          required.value = true
          return false
        },
      )
      .finally(() => (renewing = null))
    return renewing
  }

  async function logout(): Promise<void> {
    const token = refreshToken.value
    clear()
    required.value = true
    if (token) await useApi().logout(token).catch(() => undefined)
  }

  /** Ask the server who we are (`/auth/me`): refreshes the role, notices a server without
   * authentication; a 401 there leads to the login page like any other call. */
  async function probe(): Promise<void> {
    try {
      const me = await useApi().me()
      authless.value = false
      if (user.value && (me.role !== user.value.role || me.username !== user.value.username)) {
        user.value = me
        localStorage.setItem(KEY, JSON.stringify({ access: access.value, refresh: refreshToken.value, user: me }))
      }
    } catch (e) {
      authless.value = e instanceof ApiError && e.status === 404
    }
  }

  /** May the user do what `role` may? (the UI hides what the server would refuse) */
  const can = (role: UserOut['role']) => {
    if (authless.value) return role !== 'admin'
    const order = { viewer: 0, editor: 1, admin: 2 }
    return user.value !== null && order[user.value.role] >= order[role]
  }
  /** The name recorded on acknowledgements and silences. */
  const actor = computed(() => user.value?.username ?? 'anonymous')

  return { access, user, required, loggedIn, authless, actor, login, renew, logout, probe, can }
})
