// What @amas/oidc and @amas/opa add to the shared request state, as far as these tests use it.
declare global {
  interface AmasRequestState {
    auth?: { subject?: string };
    opa?: { approval: { id: string } };
  }
}

export {};
