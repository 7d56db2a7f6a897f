import { getJson, request } from './http.js';

// What the API tells every page and never changes while it is open: kept for the page's lifetime.

let configPromise = null;
export function getConfig() {
  configPromise ??= request('/config', { auth: false })
    .then((res) => res.json())
    .catch((err) => {
      configPromise = null;
      throw err;
    });
  return configPromise;
}

// Published SOP versions are immutable, so they are safe to keep for the page's lifetime.
const sopCache = new Map();
export function getSop(id, version) {
  const key = `${id}@${version}`;
  if (!sopCache.has(key)) {
    const query = new URLSearchParams({ version });
    sopCache.set(
      key,
      getJson(`/sops/${encodeURIComponent(id)}?${query}`).catch((err) => {
        sopCache.delete(key);
        throw err;
      }),
    );
  }
  return sopCache.get(key);
}
