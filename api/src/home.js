// The minimal search page of the demo: search as you type with a token,
// through the client library (the only way pages talk to the API).
import { KmtClient } from './kmt-client.js';

const q = document.getElementById('q'), tok = document.getElementById('token');
const hits = document.getElementById('hits'), status = document.getElementById('status');
const client = new KmtClient();
tok.value = localStorage.getItem('kmt-token') || '';
let seq = 0;
async function run() {
  localStorage.setItem('kmt-token', tok.value);
  client.setToken(tok.value.trim());
  const mine = ++seq;
  let body;
  try {
    body = await client.search({ q: q.value, facets: ['category'] });
  } catch (e) {
    if (mine === seq) { status.textContent = e.detail || e.message; hits.replaceChildren(); }
    return;
  }
  if (mine !== seq) return;
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
