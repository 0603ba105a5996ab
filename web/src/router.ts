import { createRouter, createWebHistory, type Router, type RouterHistory } from 'vue-router'
// the landing page is in the main bundle (no second round trip on first load); the rest is lazy
import FleetView from './views/FleetView.vue'

export function makeRouter(history: RouterHistory = createWebHistory()): Router {
  return createRouter({
    history,
    routes: [
      { path: '/', name: 'fleet', component: FleetView },
      { path: '/hosts/:id', name: 'host', component: () => import('./views/HostView.vue'), props: true },
      { path: '/explore', name: 'explore', component: () => import('./views/ExploreView.vue') },
      { path: '/boards', name: 'boards', component: () => import('./boards/BoardsView.vue') },
      { path: '/boards/:id', name: 'board', component: () => import('./boards/BoardView.vue'), props: true },
      { path: '/alerts', name: 'alerts', component: () => import('./views/AlertsView.vue') },
      { path: '/account', name: 'account', component: () => import('./views/AccountView.vue') },
      { path: '/settings', name: 'settings', component: () => import('./views/SettingsView.vue') },
      { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
      { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFound.vue') },
    ],
  })
}

/** Send to the login page when the server asked for authentication and nobody is logged in. */
export function guard(router: Router, needsLogin: () => boolean): void {
  router.beforeEach((to) => {
    if (!to.meta.public && needsLogin()) return { name: 'login', query: { next: to.fullPath } }
    return true
  })
}
