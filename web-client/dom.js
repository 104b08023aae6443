// @ts-check
/**
 * The two DOM helpers the page's modules share. Text goes in as `textContent` only: nothing a
 * user wrote is ever parsed as HTML.
 */

/**
 * The page's element with this id; a missing one is a bug in index.html, so it throws.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

/**
 * A new element.
 * @param {string} tag @param {string} [className] @param {string} [text] set as text, never HTML
 * @returns {HTMLElement}
 */
export function make(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}
