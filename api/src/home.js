// The minimal search page of the demo: search as you type with a token.
const q = document.getElementById('q'), tok = document.getElementById('token');
const hits = document.getElementById('hits'), status = document.getElementById('status');
tok.value = localStorage.getItem('kmt-token') || '';
let seq = 0;
async function run() {
  localStorage.setItem('kmt-token', tok.value);
  const mine = ++seq;
  const headers = tok.value ? { Authorization: 'Bearer ' + tok.value.trim() } : {};
  const r = await fetch('/v1/search?facets=category&q=' + encodeURIComponent(q.value), { headers });
  const body = await r.json();
  if (mine !== seq) return;
  if (!r.ok) { status.textContent = body.detail || 'error'; hits.replaceChildren(); return; }
  status.textContent = body.total + ' articles' + (body.relaxed ? ' (matching any word)' : '') + ' in ' + body.timings.total.toFixed(1) + ' ms';
  hits.replaceChildren(...body.hits.map(h => {
    const li = document.createElement('li');
    const a = document.createElement('a'); a.href = '/v1/articles/' + h.id; a.textContent = h.title;
    const p = document.createElement('div'); p.innerHTML = h.snippet; // server-escaped, <mark> only
    const m = document.createElement('div'); m.className = 'meta'; m.textContent = h.category + ' · ' + h.tags.join(', ');
    li.append(a, m, p); return li;
  }));
}
q.addEventListener('input', run); tok.addEventListener('change', run); run();
