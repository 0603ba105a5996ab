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
// nobody has signed in from this browser: straight to the login page, asking the server nothing
// (every 401 would be an error in the console); a server without authentication answers the
// login with 404 and the app goes on (session.login)
if (!session.loggedIn) session.required = true
// the fleet page needs the host list (index.html already asked for it)
if (window.location.pathname === '/' && session.loggedIn) void useFleet(pinia).load()
const router = makeRouter()
guard(router, () => session.required && !session.loggedIn)
app.use(router).mount('#app')
// the role from the server decides the write controls (App asks again after each login)
if (session.loggedIn) void session.probe()
