import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { makeRouter } from './router'
import './style.css'

import { useFleet } from './stores/fleet'

const pinia = createPinia()
const app = createApp(App).use(pinia)
// the fleet page needs the host list: ask for it while its view's code is still loading
if (window.location.pathname === '/') void useFleet(pinia).load()
app.use(makeRouter()).mount('#app')
