// Entry point: the token field in the header, then the router.
import './style.css';
import { interceptLinks, render } from './router';
import { adoptTokenFromUrl, getToken, setToken, tokenClaims } from './token';

function showWho(who: HTMLElement): void {
  const claims = tokenClaims();
  who.textContent = claims?.sub ? `${claims.sub}${claims.role === 'admin' ? ' (admin)' : ''}` : 'no token';
}

function setUpTokenForm(): void {
  const form = document.getElementById('token-form') as HTMLFormElement;
  const input = document.getElementById('token-input') as HTMLInputElement;
  const who = document.getElementById('token-who')!;
  input.value = getToken();
  showWho(who);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setToken(input.value);
    showWho(who);
    void render(); // reload the page's data with the new identity
  });
}

adoptTokenFromUrl();
setUpTokenForm();
interceptLinks();
void render();
