// The page's building blocks: the one way elements are made (h), and the notice at the top.

export const $ = (selector) => document.querySelector(selector);
export const main = $('#main');

/** Builds an element; strings become text nodes, so nothing from the API is ever parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    // A textarea has no value attribute: its default text is its content.
    else if (key === 'value' && tag === 'textarea') el.defaultValue = String(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function notify(text, kind = 'info') {
  const box = $('#notice');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = text === '';
}
