// @ts-check
// Administration (`/admin`): users (list, create, set roles), roles and
// custom groups (list, create a group), category rules — mandatory
// fields, minimum lengths, review interval, approver role — and their
// escalation paths (steps of hours past due → role or user), created and
// edited in one form. Errors from the API are shown next to their fields.
import {
  kmt, startPage, needSignIn, byId, h, names, announce, describe,
  showFieldErrors, clearFieldErrors, errorsByField,
} from './page-common.js';

/** @typedef {import('./kmt-types.js').RuleSpec} RuleSpec */
/** @typedef {import('./kmt-types.js').CategoryRule} CategoryRule */
/** @typedef {import('./kmt-types.js').EscalationStep} EscalationStep */

const MANDATORY = ['summary', 'body', 'tags', 'audience', 'review_due'];
const LENGTHS = ['title', 'summary', 'body'];

const main = byId('main');
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ (byId(id));
/** Steps shown in the rule form (each row's controls are found by index). */
let stepCount = 0;

const session = await startPage('admin');
if (!session) {
  needSignIn(main, 'Administration');
} else if (!session.roles.includes('admin')) {
  main.replaceChildren(h('h1', { text: 'Administration' }),
    h('p', { text: 'Only administrators may manage users, roles, rules and escalation paths.' }));
} else {
  byId('new-user').addEventListener('submit', createUser);
  byId('new-group').addEventListener('submit', createGroup);
  byId('rule').addEventListener('submit', saveRule);
  byId('add-step').addEventListener('click', () => { addStep({ after_hours: 24 }); focusStep(stepCount - 1); });
  byId('clear-rule').addEventListener('click', () => { fillRule('', {}); input('rule-category').focus(); });
  fillRule('', {});
  await Promise.all([loadUsers(), loadRoles(), loadRules()]);
  main.dataset.ready = 'true';
}

// ---- users ----------------------------------------------------------------

async function loadUsers() {
  const body = /** @type {HTMLTableElement} */ (byId('users')).tBodies[0];
  try {
    const users = await kmt.users();
    body.replaceChildren(...users.map((u) => {
      const id = `roles-of-${u.username}`;
      const rolesInput = h('input', { attrs: { id, value: u.roles.join(', '), list: 'role-names', autocomplete: 'off' } });
      const form = h('form', { class: 'row', attrs: { 'aria-label': `Roles of ${u.username}`, novalidate: true } },
        h('label', { class: 'visually-hidden', attrs: { for: id }, text: `Roles and groups of ${u.username}` }),
        rolesInput,
        h('button', { attrs: { type: 'submit' }, class: 'secondary', text: 'Save roles' }));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearFieldErrors(form);
        try {
          const saved = await kmt.setRoles(u.username, names(rolesInput.value));
          rolesInput.value = saved.roles.join(', ');
          announce(`${u.username} now has: ${saved.roles.join(', ') || 'no roles'}.`);
          loadRoles();
        } catch (e) {
          const rest = showFieldErrors(errorsByField(e), { roles: id, '': id });
          if (rest.length) announce(describe(e));
        }
      });
      return h('tr', { attrs: { 'data-user': u.username } },
        h('th', { attrs: { scope: 'row' }, text: u.username }),
        h('td', { text: u.display_name }),
        h('td', { text: u.email ?? '' }),
        h('td', {}, form));
    }));
  } catch (e) {
    announce(`Could not list users: ${describe(e)}`);
  }
}

/** @param {SubmitEvent} ev */
async function createUser(ev) {
  ev.preventDefault();
  const form = byId('new-user');
  clearFieldErrors(form);
  const username = input('new-username').value.trim();
  const password = input('new-password').value;
  const controls = { username: 'new-username', roles: 'new-roles', display_name: 'new-display', email: 'new-email', password: 'new-password' };
  if (!username) {
    showFieldErrors({ username: ['Give the user a name.'] }, controls);
    input('new-username').focus();
    return;
  }
  try {
    const u = await kmt.createUser({
      username,
      roles: names(input('new-roles').value),
      display_name: input('new-display').value.trim() || null,
      email: input('new-email').value.trim() || null,
    });
    if (password) await kmt.setPassword(u.username, password);
    for (const id of Object.values(controls)) input(id).value = '';
    announce(`User ${u.username} created with roles ${u.roles.join(', ') || 'none'}.`);
    await Promise.all([loadUsers(), loadRoles()]);
  } catch (e) {
    const rest = showFieldErrors(errorsByField(e), controls);
    if (rest.length) announce(`Could not create the user: ${rest.map(([, m]) => m.join('; ')).join(' ')}`);
  }
}

// ---- roles and groups -----------------------------------------------------

async function loadRoles() {
  const body = /** @type {HTMLTableElement} */ (byId('roles')).tBodies[0];
  try {
    const roles = await kmt.roles();
    body.replaceChildren(...roles.map((r) => h('tr', { attrs: { 'data-role': r.name } },
      h('th', { attrs: { scope: 'row' }, text: r.name }),
      h('td', { text: r.kind }),
      h('td', { text: r.description }),
      h('td', { text: r.permissions.join(', ') || '—' }),
      h('td', { text: r.members.join(', ') || '—' }))));
    byId('role-names').replaceChildren(...roles.map((r) => h('option', { attrs: { value: r.name } })));
  } catch (e) {
    announce(`Could not list roles: ${describe(e)}`);
  }
}

/** @param {SubmitEvent} ev */
async function createGroup(ev) {
  ev.preventDefault();
  const form = byId('new-group');
  clearFieldErrors(form);
  const controls = { name: 'group-name', description: 'group-description' };
  const name = input('group-name').value.trim();
  if (!name) {
    showFieldErrors({ name: ['Give the group a name.'] }, controls);
    input('group-name').focus();
    return;
  }
  try {
    const description = input('group-description').value.trim();
    const g = await kmt.createGroup(description ? { name, description } : { name });
    input('group-name').value = '';
    input('group-description').value = '';
    announce(`Group ${g.name} created.`);
    await loadRoles();
  } catch (e) {
    const rest = showFieldErrors(errorsByField(e), controls);
    if (rest.length) announce(`Could not create the group: ${describe(e)}`);
  }
}

// ---- rules and escalation paths -------------------------------------------

async function loadRules() {
  const body = /** @type {HTMLTableElement} */ (byId('rules')).tBodies[0];
  try {
    const rules = await kmt.rules();
    body.replaceChildren(...rules.map(ruleRow));
  } catch (e) {
    announce(`Could not list rules: ${describe(e)}`);
  }
}

/** @param {CategoryRule} r */
function ruleRow(r) {
  const s = r.spec;
  const mins = Object.entries(s.min_lengths ?? {}).map(([f, n]) => `${f} ≥ ${n}`).join(', ');
  return h('tr', { attrs: { 'data-category': r.category } },
    h('th', { attrs: { scope: 'row' }, text: r.category }),
    h('td', { text: (s.mandatory_fields ?? []).join(', ') || '—' }),
    h('td', { text: mins || '—' }),
    h('td', { text: s.review_interval_days ? `${s.review_interval_days} days` : '—' }),
    h('td', { text: s.approver_role ?? 'reviewer' }),
    h('td', {}, (s.escalation ?? []).length
      ? h('ol', { class: 'steps' }, ...(s.escalation ?? []).map((st) => h('li', { text: `after ${st.after_hours} h → ${st.to_role ? `role ${st.to_role}` : ''}${st.to_role && st.to_user ? ' and ' : ''}${st.to_user ? `user ${st.to_user}` : ''}` })))
      : '—'),
    h('td', { text: `${r.version} (${r.updated_by})` }),
    h('td', {}, h('button', {
      class: 'secondary',
      attrs: { type: 'button', 'aria-label': `Edit the rules of ${r.category}` },
      text: 'Edit',
      on: { click: () => { fillRule(r.category, r.spec); byId('rule-heading').focus(); } },
    })));
}

/**
 * Puts a rule into the form.
 * @param {string} category
 * @param {RuleSpec} spec
 */
function fillRule(category, spec) {
  const form = byId('rule');
  clearFieldErrors(form);
  input('rule-category').value = category;
  byId('rule-heading').textContent = category ? `Edit the rules of ${category}` : 'Create or edit a rule';
  for (const f of MANDATORY) input(`mf-${f}`).checked = (spec.mandatory_fields ?? []).includes(f);
  for (const f of LENGTHS) input(`min-${f}`).value = spec.min_lengths?.[f] !== undefined ? String(spec.min_lengths[f]) : '';
  input('rule-interval').value = spec.review_interval_days ? String(spec.review_interval_days) : '';
  input('rule-approver').value = spec.approver_role ?? '';
  byId('steps').replaceChildren();
  stepCount = 0;
  for (const st of spec.escalation ?? []) addStep(st);
}

/** Adds a row of the escalation path. @param {Partial<EscalationStep>} st */
function addStep(st) {
  const i = stepCount++;
  const row = h('div', { class: 'step-row', attrs: { 'data-step': i, role: 'group', 'aria-labelledby': `step-${i}-label` } },
    h('p', { attrs: { id: `step-${i}-label` }, class: 'step-label', text: `Step ${i + 1}` }),
    h('div', { class: 'field' },
      h('label', { attrs: { for: `step-${i}-after` }, text: 'Hours past due' }),
      h('input', { attrs: { id: `step-${i}-after`, type: 'number', min: 0, inputmode: 'numeric', value: st.after_hours ?? '' } })),
    h('div', { class: 'field' },
      h('label', { attrs: { for: `step-${i}-role` }, text: 'Notify role' }),
      h('input', { attrs: { id: `step-${i}-role`, list: 'role-names', autocomplete: 'off', value: st.to_role ?? '' } })),
    h('div', { class: 'field' },
      h('label', { attrs: { for: `step-${i}-user` }, text: 'or user' }),
      h('input', { attrs: { id: `step-${i}-user`, autocomplete: 'off', value: st.to_user ?? '' } })));
  row.append(h('button', {
    class: 'secondary',
    attrs: { type: 'button', 'aria-label': `Remove step ${i + 1}` },
    text: 'Remove',
    on: { click: () => { row.remove(); renumber(); byId('add-step').focus(); } },
  }));
  byId('steps').append(row);
}

/** Step labels follow the rows' order after a removal. */
function renumber() {
  byId('steps').querySelectorAll('.step-row').forEach((row, n) => {
    const label = row.querySelector('.step-label');
    if (label) label.textContent = `Step ${n + 1}`;
    row.querySelector('button')?.setAttribute('aria-label', `Remove step ${n + 1}`);
  });
}

/** @param {number} i */
function focusStep(i) { document.getElementById(`step-${i}-after`)?.focus(); }

/**
 * The rule in the form, and which control each API field name is.
 * @returns {{category: string, spec: RuleSpec, controls: Record<string, string>}}
 */
function readRule() {
  /** @type {Record<string, string>} */
  const controls = {
    category: 'rule-category', review_interval_days: 'rule-interval', approver_role: 'rule-approver',
    mandatory_fields: 'mf-summary',
  };
  /** @type {Record<string, number>} */
  const min = {};
  for (const f of LENGTHS) {
    controls[`min_lengths.${f}`] = `min-${f}`;
    const v = input(`min-${f}`).value;
    if (v !== '') min[f] = Number(v);
  }
  /** @type {EscalationStep[]} */
  const escalation = [];
  byId('steps').querySelectorAll('.step-row').forEach((row, n) => {
    const i = /** @type {HTMLElement} */ (row).dataset.step;
    controls[`escalation[${n}]`] = `step-${i}-role`;
    controls[`escalation[${n}].after_hours`] = `step-${i}-after`;
    controls[`escalation[${n}].to_role`] = `step-${i}-role`;
    controls[`escalation[${n}].to_user`] = `step-${i}-user`;
    escalation.push({
      after_hours: Number(input(`step-${i}-after`).value || 0),
      to_role: input(`step-${i}-role`).value.trim() || null,
      to_user: input(`step-${i}-user`).value.trim() || null,
    });
  });
  const interval = input('rule-interval').value;
  return {
    category: input('rule-category').value.trim(),
    spec: {
      mandatory_fields: MANDATORY.filter((f) => input(`mf-${f}`).checked),
      min_lengths: min,
      review_interval_days: interval ? Number(interval) : null,
      approver_role: input('rule-approver').value.trim() || null,
      escalation,
    },
    controls,
  };
}

/** @param {SubmitEvent} ev */
async function saveRule(ev) {
  ev.preventDefault();
  const form = byId('rule');
  clearFieldErrors(form);
  const { category, spec, controls } = readRule();
  if (!category) {
    showFieldErrors({ category: ['Name the category (or * for the default).'] }, controls);
    input('rule-category').focus();
    return;
  }
  try {
    const saved = await kmt.saveRule(category, spec);
    announce(`Rules of ${saved.category} saved as version ${saved.version}.`);
    await loadRules();
    form.dataset.saved = `${saved.category}@${saved.version}`;
  } catch (e) {
    const byField = errorsByField(e);
    const rest = showFieldErrors(byField, controls);
    const first = Object.keys(byField).map((f) => controls[f]).find(Boolean);
    if (first) byId(first).focus();
    announce(`The rule was not saved: ${Object.values(byField).flat().length} problem(s)${rest.length ? `: ${rest.map(([f, m]) => `${f} ${m.join('; ')}`).join(' ')}` : ''}.`);
  }
}
