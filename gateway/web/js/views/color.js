// Favorite colour: a native colour picker and a text field that takes any
// notation the API does (#RGB, #RRGGBB, rgb(), hsl(), CSS names). The API is
// the judge of what is valid: its field violation is shown under the field.

import { ApiError, get, put } from '../api.js';
import { fmtTime, h, id, liveRegion, newKey, say } from '../dom.js';
import { current, setFavorite } from '../session.js';

const PRESETS = ['#EF4444', '#F97316', '#FACC15', '#22C55E', '#14B8A6', '#3B82F6', '#6366F1', '#A855F7', '#EC4899', '#111827'];

const SPACE = {
  COLOR_SPACE_HEX: 'HEX', COLOR_SPACE_RGB: 'RGB', COLOR_SPACE_HSL: 'HSL', COLOR_SPACE_NAME: 'CSS name',
};

// The browser's own parser, only for the live preview (never for saving).
function previewHex(text) {
  const probe = new Option().style;
  probe.color = '';
  probe.color = text.trim();
  if (!probe.color) return null;
  const c = document.createElement('canvas').getContext('2d');
  c.fillStyle = '#000';
  c.fillStyle = probe.color;
  const v = c.fillStyle;
  return /^#[0-9a-f]{6}$/i.test(v) ? v.toUpperCase() : null;
}

export function render(root) {
  const textId = id('color-text');
  const pickerId = id('color-picker');
  const errId = id('color-error');
  const hintId = id('color-hint');

  const swatch = h('div', { class: 'swatch-xl', role: 'img', 'aria-label': 'No colour saved yet' });
  const savedHex = h('p', { class: 'hex', id: 'saved-hex' }, '—');
  const savedMeta = h('p', { class: 'muted', id: 'saved-meta' }, 'Nothing saved yet.');

  const text = h('input', {
    id: textId, name: 'color', class: 'input mono', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'e.g. #3B82F6, rgb(59, 130, 246), hsl(217, 91%, 60%), tomato',
    'aria-describedby': `${hintId} ${errId}`, maxlength: 64,
  });
  const picker = h('input', { id: pickerId, type: 'color', class: 'picker', value: '#6366F1', 'aria-label': 'Colour picker' });
  const error = h('p', { id: errId, class: 'field-error', 'aria-live': 'assertive' });
  const status = liveRegion({ id: 'color-status' });
  const save = h('button', { type: 'submit', class: 'btn primary', id: 'save-color' }, 'Save colour');
  const preview = h('span', { class: 'preview-dot', 'aria-hidden': 'true' });

  let key = null; // Idempotency-Key, kept while the same value is retried
  let keyFor = '';

  function clearError() {
    error.textContent = '';
    text.removeAttribute('aria-invalid');
  }

  function updatePreview() {
    const hex = previewHex(text.value);
    preview.style.background = hex || 'transparent';
    preview.classList.toggle('none', !hex);
    if (hex) picker.value = hex.toLowerCase();
  }

  function show(fav) {
    if (!fav || !fav.hex) return;
    swatch.style.background = fav.hex;
    swatch.setAttribute('aria-label', `Saved colour ${fav.hex}`);
    swatch.classList.add('filled');
    savedHex.textContent = fav.hex;
    const bits = [fav.value && fav.value !== fav.hex ? fav.value : null, SPACE[fav.space] || null].filter(Boolean);
    savedMeta.textContent = `${bits.length ? `${bits.join(' · ')} · ` : ''}saved ${fmtTime(fav.updateTime)}`;
  }

  text.addEventListener('input', () => { clearError(); updatePreview(); });
  picker.addEventListener('input', () => {
    text.value = picker.value.toUpperCase();
    clearError();
    updatePreview();
  });

  const form = h('form', {
    class: 'stack', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const value = text.value.trim();
      clearError();
      if (!value) {
        error.textContent = 'Enter a colour or pick one.';
        text.setAttribute('aria-invalid', 'true');
        text.focus();
        return;
      }
      if (keyFor !== value) { key = newKey(); keyFor = value; }
      save.disabled = true;
      say(status, 'Saving…', 'busy');
      try {
        const fav = await put('/api/v1/favorite', { color: value }, { headers: { 'Idempotency-Key': key } });
        key = null; keyFor = '';
        setFavorite(fav);
        show(fav);
        say(status, `Saved ${fav.hex}.`, 'ok');
      } catch (err) {
        const msg = err instanceof ApiError ? (err.field('color') || err.friendly) : `Network error: ${err.message}`;
        if (err instanceof ApiError && err.field('color')) {
          error.textContent = msg;
          text.setAttribute('aria-invalid', 'true');
          text.focus();
          say(status, '');
        } else {
          say(status, msg, 'error');
        }
        if (err instanceof ApiError) { key = null; keyFor = ''; } // refused: a new attempt is a new request
      } finally {
        save.disabled = false;
      }
    },
  },
  h('div', { class: 'field' },
    h('label', { for: textId }, 'Colour'),
    h('p', { id: hintId, class: 'hint' }, 'HEX, rgb(), hsl() or a CSS colour name.'),
    h('div', { class: 'row' },
      h('div', { class: 'input-wrap' }, preview, text),
      picker),
    error),
  h('div', { class: 'presets', role: 'group', 'aria-label': 'Suggestions' },
    PRESETS.map((hex) => {
      const b = h('button', {
        type: 'button', class: 'chip-swatch', 'aria-label': `Use ${hex}`, title: hex,
        onclick: () => { text.value = hex; clearError(); updatePreview(); text.focus(); },
      });
      b.style.background = hex;
      return b;
    })),
  h('div', { class: 'row' }, save, status));

  root.append(
    h('header', { class: 'view-head' },
      h('h1', null, 'Favorite colour'),
      h('p', { class: 'lead' }, 'Pick the colour you love. It is kept with your session; register to keep it for good.')),
    h('div', { class: 'grid two' },
      h('div', { class: 'card' }, form),
      h('div', { class: 'card saved' }, h('h2', null, 'Saved'), swatch, savedHex, savedMeta,
        h('p', null, h('a', { href: '#/share', class: 'btn ghost' }, 'Share it →')))));

  updatePreview();
  const me = current();
  if (me && me.favorite) {
    show(me.favorite);
    text.value = me.favorite.value || me.favorite.hex;
    updatePreview();
    root.dataset.loaded = 'true';
  } else {
    // The session may have been cached before another tab saved.
    get('/api/v1/favorite').then((fav) => {
      show(fav);
      setFavorite(fav);
      if (!text.value) { text.value = fav.value || fav.hex; updatePreview(); }
    }).catch(() => { /* NOT_FOUND: nothing saved yet */ })
      .finally(() => { root.dataset.loaded = 'true'; });
  }
}
