// The bearer token: pasted into the header field, kept in localStorage. A `?token=` query
// parameter (used by tests and shared links) is stored once and removed from the address bar.

const KEY = 'reel.token';

export function adoptTokenFromUrl(): void {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  setToken(token);
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

export function getToken(): string {
  return localStorage.getItem(KEY) ?? '';
}

export function setToken(token: string): void {
  const trimmed = token.trim();
  if (trimmed) localStorage.setItem(KEY, trimmed);
  else localStorage.removeItem(KEY);
}

export interface TokenClaims {
  sub?: string;
  role?: string;
  cohort?: string;
  exp?: number;
}

/** Reads the (unverified) claims for display only; the server is the authority. */
export function tokenClaims(token = getToken()): TokenClaims | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(json) as TokenClaims;
  } catch {
    return null;
  }
}
