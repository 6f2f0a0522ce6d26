//! Access at the edge: who is asking, and may they — before anything reaches a tunnel.
//!
//! [`EdgeAccess`] holds the parts built from the access configuration: the policy (hot
//! reloaded), the users file (reloaded on change), server-side sessions, brute-force
//! regulation, TOTP, service tokens, the assertion keys and the audit log. Three entry
//! points use them:
//! * `layer` — the pipeline layer that judges every request to a routed host;
//! * `portal` — the login portal on the auth host (and its forward-auth endpoints);
//! * `app_paths` — the few paths the edge answers itself on every application host
//!   (`/cdn-cgi/access/callback`, `/logout`, `/certs`);
//! * `cli_login` — `/cdn-cgi/access/cli`, where the access client's browser sign-in ends:
//!   answered after the policy admitted the request, it mints a CLI token.
//!
//! Layout: `setup` (building and reloading), `identity` (from cookies and service tokens),
//! `pages`, `http_util`, and the three above.

mod app_paths;
mod cli_login;
mod forward;
mod http_util;
mod identify;
mod layer;
mod pages;
mod passkey_pages;
mod portal;
mod setup;
mod sign_in;

pub(crate) use layer::AccessLayer;
pub use setup::AccessOptions;
pub(crate) use setup::EdgeAccess;
