import { createPinia } from 'pinia'
import { createApp } from 'vue'
import { setApi } from './api'
import { ApiClient } from './api/client'
import App from './App.vue'
import { guard, makeRouter } from './router'
import { useFleet } from './stores/fleet'
import { useSession } from './stores/session'
import './style.css'

const pinia = createPinia()
const app = createApp(App).use(pinia)
const session = useSession(pinia)
setApi(new ApiClient({ token: () => session.access, unauthorized: () => session.renew() }))
// the fleet page needs the host list (index.html already asked for it)
if (window.location.pathname === '/') void useFleet(pinia).load()
const router = makeRouter()
guard(router, () => session.required && !session.loggedIn)
app.use(router).mount('#app')
// the role from the server (and whether it has authentication at all) decides the write controls
void session.probe()
