import { createRouter, createWebHistory, type Router, type RouterHistory } from 'vue-router'

export function makeRouter(history: RouterHistory = createWebHistory()): Router {
  return createRouter({
    history,
    routes: [
      { path: '/', name: 'fleet', component: () => import('./views/FleetView.vue') },
      { path: '/hosts/:id', name: 'host', component: () => import('./views/HostView.vue'), props: true },
      { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFound.vue') },
    ],
  })
}
