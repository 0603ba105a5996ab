import { ApiClient } from './client'
import { AdminApi } from './admin'
import { AlertsApi } from './alerts'

let client = new ApiClient()

/** The app's API client (tests swap it for one pointed at their server). */
export function useApi(): ApiClient {
  return client
}

export function setApi(c: ApiClient): void {
  client = c
}

/** The alerts API on the app's client. */
export function useAlertsApi(): AlertsApi {
  return new AlertsApi(client)
}

/** The admin API (users, agent keys, enrollment) on the app's client. */
export function useAdminApi(): AdminApi {
  return new AdminApi(client)
}
