import { ApiClient } from './client'

let client = new ApiClient()

/** The app's API client (tests swap it for one pointed at their server). */
export function useApi(): ApiClient {
  return client
}

export function setApi(c: ApiClient): void {
  client = c
}
