// The shape of a page: it fills root (already in the document) and resolves when every
// section has loaded, so the shell can mark the page ready.

export type Page = (root: HTMLElement, params: URLSearchParams) => Promise<void>;
