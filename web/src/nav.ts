// Moves to a page (and its query: filters, grouping) through the address, so the browser's
// back button and shared links work; the shell re-renders on hashchange.

export function go(id: string, params?: URLSearchParams): void {
  const q = params?.toString();
  location.hash = '#/' + id + (q ? '?' + q : '');
}
