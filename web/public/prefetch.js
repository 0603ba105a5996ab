// The fleet page needs the host list: ask for it now, while the app's code loads
// (src/api/prefetch.ts hands the answer to the fleet store). A file rather than an inline
// script: the server's Content-Security-Policy allows scripts from this origin only.
if (location.pathname === '/') {
  var hp = null
  try { hp = JSON.parse(localStorage.getItem('hostpulse.session') || 'null') } catch (e) {}
  window.__hpHosts = fetch('/api/v1/hosts', {
    headers: hp && hp.access ? { accept: 'application/json', authorization: 'Bearer ' + hp.access } : { accept: 'application/json' },
  }).catch(function () { return null })
}
