use http_body_util::BodyExt as _;

use super::*;

/// The page's HTML (the bodies are in memory: this never waits).
fn html(response: Response<EdgeBody>) -> String {
    let body = response.into_body();
    let bytes = futures_lite_block_on(body);
    String::from_utf8(bytes).unwrap()
}

fn futures_lite_block_on(body: EdgeBody) -> Vec<u8> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { body.collect().await.unwrap().to_bytes().to_vec() })
}

fn all_methods<'a>() -> LoginChoices<'a> {
    LoginChoices {
        password: true,
        email_pin: true,
        passkey: true,
        providers: vec![
            ProviderChoice {
                name: "keycloak",
                display_name: "Company account",
            },
            ProviderChoice {
                name: "google",
                display_name: "Google",
            },
        ],
    }
}

/// Everything a strict CSP would block, or a page could leak through: inline script,
/// inline style, event handlers, external resources.
fn assert_no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..lower[i..].find('>').map_or(lower.len(), |e| i + e)];
        assert!(tag.contains(" src=\""), "inline script: {tag}");
        assert!(
            lower[i..].starts_with(&format!("{tag}></script>")),
            "a script with a body: {}",
            &html[i..]
        );
    }
    assert!(!lower.contains("<style"), "inline style element");
    assert!(!lower.contains(" style="), "inline style attribute");
    for (i, _) in lower.match_indices(" on") {
        let name: String = lower[i + 1..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        assert!(
            !lower[i + 1 + name.len()..].starts_with('='),
            "event handler attribute {name}"
        );
    }
    assert!(!lower.contains("javascript:"));
    // External resources: none (the SVG namespace in the data: icon is only a name).
    let external = lower.replace("http://www.w3.org/2000/svg", "");
    assert!(!external.contains("http://") && !external.contains("//fonts"));
}

#[test]
fn text_is_escaped_everywhere() {
    assert_eq!(
        escape("<script>\"x\"&'y'</script>"),
        "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
    );
}

#[test]
fn pages_carry_a_strict_policy_and_no_inline_script() {
    let response = login(
        "c",
        Some("https://a.test/\"><script>"),
        Some("<b>"),
        &all_methods(),
    );
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"));
    assert!(csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    let page = html(response);
    assert!(
        !page.contains("<script>") && !page.contains("<b>"),
        "{page}"
    );
    assert_no_inline_code(&page);
}

#[test]
fn the_referrer_policy_keeps_a_real_origin_on_the_portals_own_forms() {
    // Under `no-referrer` browsers post the forms with `Origin: null`, and the portal's
    // origin check refuses every sign-in (found by tests/browser.rs).
    let response = login("c", None, None, &LoginChoices::password_only());
    assert_eq!(response.headers()[header::REFERRER_POLICY], "same-origin");
}

#[test]
fn no_page_has_inline_code() {
    let pages = [
        login("c", Some("https://a.test/"), Some("e"), &all_methods()),
        totp("c", None, "alice", Some("e")),
        reauthenticate("c", "alice", None),
        enrol_totp("c", "ABCD", "otpauth://totp/x", "s", None),
        denied(
            Some("bob"),
            "rid",
            SwitchAccount::Form {
                csrf: "c",
                rd: None,
            },
        ),
        logout_confirm("c", None),
        pin_sent("c", None, "a@b.test", None),
        provider_error(StatusCode::BAD_GATEWAY, "t", "x", None),
    ];
    for page in pages {
        assert_no_inline_code(&html(page));
    }
}

#[test]
fn password_only_shows_one_form_without_or() {
    let page = html(login(
        "tok",
        Some("https://app.test:8443/x?y=1"),
        None,
        &LoginChoices::password_only(),
    ));
    assert!(page.contains("<title>Sign in · Portless</title>"), "{page}");
    assert!(page.contains("<form method=\"post\" action=\"/login\">"));
    for field in [
        "name=\"username\" autocomplete=\"username\"",
        "name=\"password\" autocomplete=\"current-password\"",
        "name=\"remember_me\" value=\"1\"",
        "name=\"csrf\" value=\"tok\"",
        "name=\"rd\" value=\"https://app.test:8443/x?y=1\"",
        "<label for=\"username\">",
        "<label for=\"password\">",
        "<label for=\"remember_me\">",
    ] {
        assert!(page.contains(field), "{field}: {page}");
    }
    assert!(
        page.contains("to continue to <strong>app.test</strong>"),
        "{page}"
    );
    assert!(!page.contains("divider"), "{page}");
    assert!(!page.contains("/oidc/") && !page.contains("/login/email"));
    assert!(!page.contains("passkey"));
}

#[test]
fn every_method_in_order_with_or_between() {
    let page = html(login("tok", None, None, &all_methods()));
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {page}"))
    };
    let keycloak = at("action=\"/oidc/keycloak/start\"");
    let google = at("action=\"/oidc/google/start\"");
    let password = at("action=\"/login\"");
    let email = at("action=\"/login/email\"");
    let passkey = at("id=\"passkey-login\"");
    assert!(keycloak < google && google < password && password < email && email < passkey);
    assert!(page.contains(">Continue with Company account</button>"));
    assert!(page.contains(">Continue with Google</button>"));
    assert!(page.contains(">Email me a sign-in code</button>"));
    assert!(page.contains("name=\"email\" autocomplete=\"email\""));
    // One "or" between providers and password, password and email, and the passkey's,
    // hidden with the button until the script shows the section.
    assert_eq!(page.matches("class=\"divider\"").count(), 3, "{page}");
    assert!(page.contains("<section id=\"passkey-login\" hidden><div class=\"divider\""));
    assert!(page.contains("id=\"passkey-signin\">Sign in with a passkey</button>"));
    assert!(page.contains("<script src=\"/.portless/passkey.js\" defer></script>"));
    // Each provider form carries the CSRF token.
    assert_eq!(page.matches("name=\"csrf\" value=\"tok\"").count(), 4);
}

#[test]
fn a_single_method_is_shown_alone() {
    let email = html(login(
        "t",
        None,
        None,
        &LoginChoices {
            email_pin: true,
            ..LoginChoices::default()
        },
    ));
    assert!(email.contains("action=\"/login/email\""));
    assert!(email.contains("autofocus"), "the only field has focus");
    assert!(!email.contains("divider") && !email.contains("action=\"/login\""));
    let provider = html(login(
        "t",
        None,
        None,
        &LoginChoices {
            providers: vec![ProviderChoice {
                name: "kc",
                display_name: "<Corp>",
            }],
            ..LoginChoices::default()
        },
    ));
    assert!(provider.contains(">Continue with &lt;Corp&gt;</button>"));
    assert!(!provider.contains("divider"));
    let passkey = html(login(
        "t",
        None,
        None,
        &LoginChoices {
            passkey: true,
            ..LoginChoices::default()
        },
    ));
    assert!(passkey.contains("<noscript>"), "says why nothing shows");
    assert!(!passkey.contains("divider"));
    let none = html(login("t", None, None, &LoginChoices::default()));
    assert!(none.contains("No sign-in method is open"), "{none}");
}

#[test]
fn errors_are_alerts_and_answer_401() {
    let response = login(
        "t",
        None,
        Some("Incorrect username or password."),
        &all_methods(),
    );
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        html(response)
            .contains("<p class=\"error\" role=\"alert\">Incorrect username or password.</p>")
    );
}

#[test]
fn the_pin_page_says_the_same_whoever_asked() {
    let page = html(pin_sent("tok", Some("https://a.test/x"), "a@b.test", None));
    assert!(page.contains(
        "If <strong>a@b.test</strong> may sign in here, we have sent a code to it. \
It is valid for 10 minutes and can be used once."
    ));
    assert!(page.contains("action=\"/login/email/verify\""));
    assert!(page.contains("name=\"code\" inputmode=\"numeric\""));
    assert!(page.contains("autocomplete=\"one-time-code\""));
    assert!(page.contains("name=\"rd\" value=\"https://a.test/x\""));
    assert!(page.contains("<a href=\"/?rd=https%3A%2F%2Fa.test%2Fx\">Use another address</a>"));
    // The address is the only thing that differs between two addresses.
    let other = html(pin_sent("tok", Some("https://a.test/x"), "z@y.test", None));
    assert_eq!(page.replace("a@b.test", "z@y.test"), other);
    let wrong = pin_sent("tok", None, "<a@b>", Some("That code is not valid."));
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = html(wrong);
    assert!(wrong.contains("&lt;a@b&gt;") && wrong.contains("role=\"alert\""));
    assert!(wrong.contains("href=\"/\">Use another address"));
}

#[test]
fn denied_shows_the_request_id_the_account_and_a_way_out() {
    let response = denied(
        Some("bob"),
        "req-123",
        SwitchAccount::Form {
            csrf: "tok",
            rd: Some("https://admin.test/"),
        },
    );
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["portless-error"], "access_denied");
    let page = html(response);
    assert!(page.contains("<title>Access denied · Portless</title>"));
    assert!(page.contains("signed in as <strong>bob</strong>"));
    assert!(page.contains("<code class=\"copy\" id=\"request-id\">req-123</code>"));
    assert!(page.contains("Request id") || page.contains("request id"));
    assert!(page.contains("<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"tok\"><input type=\"hidden\" name=\"rd\" value=\"https://admin.test/\">"));
    assert!(page.contains(">Sign in with another account</button>"));
    let app_host = html(denied(
        None,
        "r",
        SwitchAccount::Link("https://auth.test/logout"),
    ));
    assert!(app_host.contains(
        "<a class=\"button secondary\" href=\"https://auth.test/logout\">Sign in with another account</a>"
    ));
    assert!(app_host.contains("This page is not open to you."));
    let nowhere = html(denied(None, "", SwitchAccount::Nowhere));
    assert!(!nowhere.contains("request-id") && !nowhere.contains("another account"));
}

#[test]
fn provider_errors_offer_another_try() {
    let response = provider_error(
        StatusCode::BAD_GATEWAY,
        "The provider could not be reached",
        "Company account did not answer.",
        Some("https://a.test/"),
    );
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let page = html(response);
    assert!(page.contains("<h1>The provider could not be reached</h1>"));
    assert!(page.contains("role=\"alert\">Company account did not answer.</p>"));
    assert!(page.contains("href=\"/?rd=https%3A%2F%2Fa.test%2F\">Try again</a>"));
}

#[test]
fn the_header_names_the_portal_host_while_answering_it() {
    let page = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(on_portal("auth.example.test", async {
            logout_confirm("c", None)
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
        }));
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(page.contains(
        "<header class=\"site\"><span class=\"brand\">Portless</span><span class=\"host\">auth.example.test</span></header>"
    ));
    let elsewhere = html(logout_confirm("c", None));
    assert!(elsewhere.contains("<span class=\"brand\">Portless</span></header>"));
}

#[test]
fn the_stylesheet_keeps_its_promises() {
    // Dark mode, focus rings, the hidden-until-script class, no external resources.
    assert!(STYLESHEET.contains("@media (prefers-color-scheme: dark)"));
    assert!(STYLESHEET.contains(":focus-visible"));
    assert!(STYLESHEET.contains(".needs-js"));
    assert!(STYLESHEET.contains("min-height: 2.9rem"));
    assert!(!STYLESHEET.contains("@import") && !STYLESHEET.contains("@font-face"));
    for (i, _) in STYLESHEET.match_indices("url(") {
        assert!(
            STYLESHEET[i..].starts_with("url(\"data:image/svg+xml,"),
            "only data: images: {}",
            &STYLESHEET[i..]
        );
    }
}
