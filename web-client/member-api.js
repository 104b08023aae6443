// The member API (`/course/v1`) as the course home and the quiz page call it: one request with
// the member's token, which never throws.

/** @typedef {{ok: boolean, status: number, body: any}} Answer */

/**
 * One request to the member API. A network failure is status 0; a body that is not JSON (a
 * proxy's page, say) is null, and the status speaks.
 * @param {string} token @param {string} method @param {string} url @param {unknown} [body]
 * @returns {Promise<Answer>}
 */
export async function memberApi(token, method, url, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: the status speaks.
    }
    return { ok: response.ok, status: response.status, body: parsed };
  } catch {
    return { ok: false, status: 0, body: null };
  }
}
