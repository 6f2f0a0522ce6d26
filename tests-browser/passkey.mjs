// Flow 4: passkeys with Chromium's virtual authenticator (CDP WebAuthn domain: a CTAP2
// platform authenticator with resident keys and user verification). The user signs in with
// a password, re-authenticates, registers a passkey at /settings and sees it listed; signs
// out; signs in to a two-factor application with password + passkey; then with the passkey
// alone (no username, no password); a copy of the passkey with an older signature counter
// (a cloned authenticator) is refused; the user removes the passkey and, signed out again,
// sees it refused.
//
// Env: PORTLESS_APP_URL (a two-factor app), PORTLESS_PORTAL_URL, PORTLESS_USER,
// PORTLESS_PASSWORD, PORTLESS_CA_PEM, PORTLESS_SCREENSHOTS.

import { env, freshPage, go, launch, run, see, signIn } from "./lib.mjs";

/** Clicks a passkey button (the script navigates when the ceremony succeeds). */
async function ceremony(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

async function signOut(page, portal, steps, name) {
  await page.goto(`${portal}/logout`);
  await go(page, "main form button[type=submit]");
  await see(page, steps, name);
}

await run(async (steps, result) => {
  const app = env("PORTLESS_APP_URL");
  const portal = env("PORTLESS_PORTAL_URL");
  const user = env("PORTLESS_USER");
  const password = env("PORTLESS_PASSWORD");
  const { browser, close } = await launch();
  try {
    const page = await freshPage(browser);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    // Settings need a signed-in user who just typed the password again.
    await page.goto(`${portal}/settings`);
    await see(page, steps, "sign-in");
    await signIn(page, user, password);
    await see(page, steps, "confirm-it-is-you");
    await page.fill("#password", password);
    await go(page, "main form button[type=submit]");
    await see(page, steps, "settings");

    // Register a passkey named "Laptop".
    await page.fill("#passkey-name", "Laptop");
    await ceremony(page, "#passkey-add");
    await see(page, steps, "registered");
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    result.credentials = credentials.map((c) => ({
      rpId: c.rpId,
      resident: c.isResidentCredential,
      signCount: c.signCount,
    }));

    await signOut(page, portal, steps, "signed-out");

    // Second factor: password, then the passkey where a code would be asked.
    await page.goto(app);
    await signIn(page, user, password);
    await see(page, steps, "second-factor");
    await ceremony(page, "#passkey-2fa");
    await see(page, steps, "app-second-factor");
    await signOut(page, portal, steps, "signed-out-second-factor");

    // Passwordless: the application sends the user to the portal; one click, no username.
    await page.goto(app);
    await see(page, steps, "sign-in-with-passkey");
    await ceremony(page, "#passkey-signin");
    await see(page, steps, "app");

    // A clone: the same key with a signature counter that went back.
    await signOut(page, portal, steps, "signed-out-before-clone");
    const [original] = (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
    result.counterBeforeClone = original.signCount;
    const replace = async (signCount) => {
      await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: original.credentialId });
      await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...original, signCount } });
    };
    await replace(0);
    await page.goto(app);
    await page.click("#passkey-signin");
    await page.waitForFunction(() => /copied/.test(document.getElementById("passkey-status").textContent));
    await see(page, steps, "clone-refused");
    result.cloneRefusal = await page.locator("#passkey-status").innerText();
    // The real authenticator, whose counter moved on, still signs in.
    await replace(original.signCount + 100);
    await ceremony(page, "#passkey-signin");
    await see(page, steps, "app-again");

    // Remove it (password again first), then it no longer signs in.
    await page.goto(`${portal}/settings`);
    await see(page, steps, "confirm-again");
    await page.fill("#password", password);
    await go(page, "main form button[type=submit]");
    await go(page, "#passkeys form button[type=submit]");
    await see(page, steps, "removed");

    await signOut(page, portal, steps, "signed-out-again");
    await page.goto(app);
    await page.click("#passkey-signin");
    await page.waitForFunction(() => {
      const status = document.getElementById("passkey-status");
      return status && /not registered|not accepted/.test(status.textContent);
    });
    await see(page, steps, "passkey-refused");
    result.refusal = await page.locator("#passkey-status").innerText();
  } finally {
    await close();
  }
});
