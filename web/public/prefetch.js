// The first page's data: ask for it now, while the app's code loads (src/api/prefetch.ts hands
// the answers over): the host list for the fleet page and a board, and the board itself. A file
// rather than an inline script: the server's Content-Security-Policy allows scripts from this
// origin only. Only for a signed-in browser: without a session the app shows the login page first.
var hp = null
try { hp = JSON.parse(localStorage.getItem('hostpulse.session') || 'null') } catch (e) {}
var hpBoard = /^\/boards\/([^/]+)\/?$/.exec(location.pathname)
if (hp && hp.access && (location.pathname === '/' || hpBoard)) {
  var hpAsk = function (path) {
    return fetch('/api/v1' + path, {
      headers: { accept: 'application/json', authorization: 'Bearer ' + hp.access },
    }).catch(function () { return null })
  }
  // the board first: its answer decides what the widgets read
  if (hpBoard) window.__hpBoard = { id: decodeURIComponent(hpBoard[1]), resp: hpAsk('/dashboards/' + hpBoard[1]) }
  window.__hpHosts = hpAsk('/hosts')
}
// a board's own code too (index.html names its chunks): it loads alongside the app's, rather
// than after the app has started (the link a dynamic import would add then finds it in place)
var hpAssets = hpBoard && hp && hp.access && document.querySelector('meta[name=hp-board-assets]')
if (hpAssets) {
  hpAssets.content.split(' ').forEach(function (href) {
    if (!href) return
    var link = document.createElement('link')
    if (/\.css$/.test(href)) { link.rel = 'preload'; link.as = 'style' } else link.rel = 'modulepreload'
    link.crossOrigin = ''
    link.href = href
    document.head.appendChild(link)
  })
}
