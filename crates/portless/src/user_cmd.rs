//! `portless user add|passwd|disable|enable|list`: edits of the users file
//! (`users_database.yml`) that an administrator can run on a live edge.
//!
//! Every edit goes through `portless_access::users`: new passwords are hashed with argon2id,
//! the file is replaced atomically with its mode (and, as root, its owner) kept, and every
//! other user and comment stays as written. A running edge picks the change up at its next
//! check of the file. Passwords come from the terminal (asked twice, not echoed) or, for
//! scripts, one line of standard input with `--password-stdin`; never from an argument, which
//! other users of the machine could read in the process list.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use portless_access::users::{self, EditOutcome, NewUser, UsersDatabase};
use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 8;

/// `portless user …`.
#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Add a user (the password is hashed with argon2id).
    Add(AddArgs),
    /// Set a new password for a user.
    Passwd(PasswdArgs),
    /// Disable a user: they can no longer log in (their line stays in the file).
    Disable(NameArgs),
    /// Enable a disabled user again.
    Enable(NameArgs),
    /// List the users, their groups and whether they are disabled.
    List(ListArgs),
}

/// The users file every subcommand works on.
#[derive(Args, Debug, Clone)]
pub(crate) struct UsersFileArg {
    /// The users file. Default: the one the access configuration names
    /// (`authentication_backend.file.path` of --config), else ./users_database.yml.
    #[arg(long = "users-file", env = "PORTLESS_USERS_FILE")]
    pub(crate) users_file: Option<PathBuf>,
    /// The edge's access configuration, to find its users file.
    #[arg(long = "config", env = "PORTLESS_ACCESS_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

impl UsersFileArg {
    /// The users file: --users-file, else the access configuration's, else the default.
    pub(crate) fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.users_file {
            return Ok(path.clone());
        }
        if let Some(config) = &self.config {
            let loaded = portless_access::config::AccessConfig::load(config)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            return loaded.config.users_file.ok_or_else(|| {
                anyhow::anyhow!(
                    "{} names no users file (authentication_backend.file.path); pass --users-file",
                    config.display()
                )
            });
        }
        Ok(PathBuf::from("./users_database.yml"))
    }
}

/// `portless user add`.
#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// Username (compared case-insensitively).
    pub(crate) name: String,
    /// Display name (default: the username).
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// Email address (lets the user log in with it, too).
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// A group; repeat for several (`--group admins --group dev`).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// Read the password from one line of standard input instead of the terminal.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    #[command(flatten)]
    pub(crate) file: UsersFileArg,
}

/// `portless user passwd`.
#[derive(Args, Debug)]
pub(crate) struct PasswdArgs {
    /// Username.
    pub(crate) name: String,
    /// Read the password from one line of standard input instead of the terminal.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    #[command(flatten)]
    pub(crate) file: UsersFileArg,
}

/// `portless user disable|enable`.
#[derive(Args, Debug)]
pub(crate) struct NameArgs {
    /// Username.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) file: UsersFileArg,
}

/// `portless user list`.
#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) file: UsersFileArg,
}

/// Runs a `portless user` subcommand, reading passwords from this process's terminal or
/// standard input and printing to standard output.
pub(crate) fn run(cmd: UserCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    execute(cmd, &mut Terminal, &mut stdout)
}

// === password input ===

/// Where passwords come from (a trait so tests can type them).
trait PasswordInput {
    /// Whether standard input is a terminal.
    fn stdin_is_terminal(&self) -> bool;
    /// One line of standard input.
    fn stdin_line(&mut self) -> std::io::Result<String>;
    /// Asks on the terminal without echo.
    fn prompt(&mut self, prompt: &str) -> std::io::Result<String>;
}

/// The real terminal and standard input.
struct Terminal;

impl PasswordInput for Terminal {
    fn stdin_is_terminal(&self) -> bool {
        std::io::stdin().is_terminal()
    }

    fn stdin_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line)
    }

    fn prompt(&mut self, prompt: &str) -> std::io::Result<String> {
        rpassword::prompt_password(prompt)
    }
}

/// The new password for `name`: one line of stdin, or asked twice on the terminal.
fn read_password(
    input: &mut dyn PasswordInput,
    verb: &str,
    name: &str,
    from_stdin: bool,
) -> anyhow::Result<SecretString> {
    let password = if from_stdin {
        let line = input
            .stdin_line()
            .context("could not read the password from standard input")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        SecretString::from(line.strip_suffix('\r').unwrap_or(line))
    } else if input.stdin_is_terminal() {
        let first = SecretString::from(
            input
                .prompt(&format!("New password for {name}: "))
                .context("could not read the password from the terminal")?,
        );
        let second = SecretString::from(
            input
                .prompt("Repeat the password: ")
                .context("could not read the password from the terminal")?,
        );
        if first.expose_secret() != second.expose_secret() {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        bail!(
            "standard input is not a terminal, so the password cannot be asked: pass it on \
             standard input with --password-stdin, e.g. \
             `printf '%s\\n' \"$PASSWORD\" | portless user {verb} {name} --password-stdin`"
        );
    };
    check_password(&password)?;
    Ok(password)
}

fn check_password(password: &SecretString) -> anyhow::Result<()> {
    let chars = password.expose_secret().chars().count();
    if chars == 0 {
        bail!("the password is empty; nothing was changed");
    }
    if chars < MIN_PASSWORD_CHARS {
        bail!(
            "the password has {chars} characters; use at least {MIN_PASSWORD_CHARS} \
             (a few random words make a good one); nothing was changed"
        );
    }
    Ok(())
}

// === the subcommands ===

fn execute(
    cmd: UserCommand,
    input: &mut dyn PasswordInput,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add(args) => add(args, input, out),
        UserCommand::Passwd(args) => passwd(args, input, out),
        UserCommand::Disable(args) => set_disabled(&args, true, out),
        UserCommand::Enable(args) => set_disabled(&args, false, out),
        UserCommand::List(args) => list(&args.file.path()?, out),
    }
}

fn add(args: AddArgs, input: &mut dyn PasswordInput, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = args.file.path()?;
    let password = read_password(input, "add", &args.name, args.password_stdin)?;
    let user = NewUser {
        displayname: args.display_name.unwrap_or_else(|| args.name.clone()),
        name: args.name,
        email: args.email,
        groups: args.groups,
        password_plain: password,
    };
    let outcome = users::add_user(&path, user)?;
    if outcome.created {
        writeln!(out, "created {} (mode 0600)", path.display())?;
    }
    writeln!(
        out,
        "added user {}{} to {}",
        outcome.user,
        algorithm(&outcome),
        path.display()
    )?;
    Ok(())
}

fn passwd(
    args: PasswdArgs,
    input: &mut dyn PasswordInput,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = args.file.path()?;
    // Fail on an unknown user before asking for a password.
    let database = load(&path)?;
    if database.get(&args.name).is_none() {
        bail!(
            "no user `{}` in {}: check the name with `portless user list`",
            args.name,
            path.display()
        );
    }
    let password = read_password(input, "passwd", &args.name, args.password_stdin)?;
    let outcome = users::set_password(&path, &args.name, &password)?;
    writeln!(
        out,
        "changed the password of {}{} in {}",
        outcome.user,
        algorithm(&outcome),
        path.display()
    )?;
    Ok(())
}

fn set_disabled(args: &NameArgs, disabled: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = &args.file.path()?;
    let outcome = users::set_disabled(path, &args.name, disabled)?;
    let state = if disabled { "disabled" } else { "enabled" };
    if outcome.changed {
        writeln!(out, "{state} user {} in {}", outcome.user, path.display())?;
    } else {
        writeln!(
            out,
            "user {} is already {state} in {}; nothing changed",
            outcome.user,
            path.display()
        )?;
    }
    Ok(())
}

fn list(path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let database = load(path)?;
    if database.is_empty() {
        writeln!(out, "no users in {}", path.display())?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> = database
        .users()
        .map(|user| {
            let hash = user.password_hash();
            [
                user.name().to_owned(),
                user.display_name().to_owned(),
                user.email().unwrap_or("-").to_owned(),
                user.groups().join(","),
                if user.is_disabled() {
                    "disabled"
                } else {
                    "enabled"
                }
                .to_owned(),
                format!(
                    "{}{}",
                    hash.algorithm(),
                    if hash.is_legacy() { " (rehash)" } else { "" }
                ),
            ]
        })
        .collect();
    let header = ["NAME", "DISPLAY NAME", "EMAIL", "GROUPS", "STATUS", "HASH"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<UsersDatabase> {
    // The diagnostics already name the file, line and fix: show them as they are.
    UsersDatabase::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))
}

fn algorithm(outcome: &EditOutcome) -> String {
    outcome
        .algorithm
        .map(|a| format!(" ({a})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::VecDeque;
    use std::os::unix::fs::PermissionsExt;

    use clap::Parser;

    use super::*;

    /// `portless user …` as the lead will mount it.
    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Top {
        #[command(subcommand)]
        User(UserCommand),
    }

    /// Typed passwords: stdin lines and terminal answers.
    struct Typed {
        terminal: bool,
        stdin: VecDeque<String>,
        prompts: VecDeque<String>,
        asked: Vec<String>,
    }

    impl Typed {
        fn stdin(line: &str) -> Typed {
            Typed {
                terminal: false,
                stdin: VecDeque::from([line.to_owned()]),
                prompts: VecDeque::new(),
                asked: Vec::new(),
            }
        }

        fn terminal(answers: &[&str]) -> Typed {
            Typed {
                terminal: true,
                stdin: VecDeque::new(),
                prompts: answers.iter().map(|a| (*a).to_owned()).collect(),
                asked: Vec::new(),
            }
        }
    }

    impl PasswordInput for Typed {
        fn stdin_is_terminal(&self) -> bool {
            self.terminal
        }
        fn stdin_line(&mut self) -> std::io::Result<String> {
            Ok(self.stdin.pop_front().unwrap_or_default())
        }
        fn prompt(&mut self, prompt: &str) -> std::io::Result<String> {
            self.asked.push(prompt.to_owned());
            Ok(self.prompts.pop_front().unwrap_or_default())
        }
    }

    fn command(args: &[&str], file: &Path) -> UserCommand {
        let file = file.to_str().unwrap();
        let argv = ["portless", "user"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--users-file", file]);
        match TestCli::try_parse_from(argv).unwrap().command {
            Top::User(cmd) => cmd,
        }
    }

    fn run_with(args: &[&str], file: &Path, input: &mut Typed) -> anyhow::Result<String> {
        let mut out = Vec::new();
        execute(command(args, file), input, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn add_passwd_disable_enable_and_list_on_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users_database.yml");
        let shown = path.display().to_string();

        let added = run_with(
            &[
                "add",
                "Alice",
                "--display-name",
                "Alice Doe",
                "--email",
                "alice@example.com",
                "--group",
                "admins",
                "--group",
                "dev",
                "--password-stdin",
            ],
            &path,
            &mut Typed::stdin("first password\n"),
        )
        .unwrap();
        assert_eq!(
            added,
            format!("created {shown} (mode 0600)\nadded user alice (argon2id) to {shown}\n")
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let db = UsersDatabase::load(&path).unwrap();
        assert!(
            db.authenticate("alice@example.com", "first password")
                .is_ok()
        );
        assert_eq!(db.get("alice").unwrap().groups(), ["admins", "dev"]);

        let mut typed = Typed::terminal(&["second password", "second password"]);
        let changed = run_with(&["passwd", "alice"], &path, &mut typed).unwrap();
        assert_eq!(
            changed,
            format!("changed the password of alice (argon2id) in {shown}\n")
        );
        assert_eq!(
            typed.asked,
            ["New password for alice: ", "Repeat the password: "]
        );
        let db = UsersDatabase::load(&path).unwrap();
        assert!(db.authenticate("alice", "second password").is_ok());
        assert!(db.authenticate("alice", "first password").is_err());

        let none = &mut Typed::stdin("");
        let disabled = run_with(&["disable", "ALICE"], &path, none).unwrap();
        assert_eq!(disabled, format!("disabled user alice in {shown}\n"));
        assert!(
            UsersDatabase::load(&path)
                .unwrap()
                .authenticate("alice", "second password")
                .is_err()
        );
        let again = run_with(&["disable", "alice"], &path, none).unwrap();
        assert_eq!(
            again,
            format!("user alice is already disabled in {shown}; nothing changed\n")
        );

        let listed = run_with(&["list"], &path, none).unwrap();
        assert_eq!(
            listed,
            "NAME   DISPLAY NAME  EMAIL              GROUPS      STATUS    HASH\n\
             alice  Alice Doe     alice@example.com  admins,dev  disabled  argon2id\n"
        );
        let enabled = run_with(&["enable", "alice"], &path, none).unwrap();
        assert_eq!(enabled, format!("enabled user alice in {shown}\n"));
    }

    #[test]
    fn short_empty_and_mismatched_passwords_are_refused_before_any_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users_database.yml");
        let add = ["add", "bob", "--password-stdin"];
        let empty = run_with(&add, &path, &mut Typed::stdin("\n")).unwrap_err();
        assert!(
            empty.to_string().starts_with("the password is empty"),
            "{empty}"
        );
        let short = run_with(&add, &path, &mut Typed::stdin("1234567\r\n")).unwrap_err();
        assert!(
            short
                .to_string()
                .starts_with("the password has 7 characters; use at least 8"),
            "{short}"
        );
        let mut typed = Typed::terminal(&["one password", "another one"]);
        let differ = run_with(&["add", "bob"], &path, &mut typed).unwrap_err();
        assert!(differ.to_string().starts_with("the two passwords differ"));
        let no_tty = run_with(&["add", "bob"], &path, &mut Typed::stdin("x")).unwrap_err();
        assert!(no_tty.to_string().contains("--password-stdin"), "{no_tty}");
        assert!(!path.exists(), "nothing was written");
    }

    #[test]
    fn errors_name_the_problem_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users_database.yml");
        let stdin = |line: &str| Typed::stdin(line);
        run_with(
            &["add", "carol", "--password-stdin"],
            &path,
            &mut stdin("long enough\n"),
        )
        .unwrap();
        let exists = run_with(
            &["add", "CAROL", "--password-stdin"],
            &path,
            &mut stdin("long enough\n"),
        )
        .unwrap_err();
        assert!(
            exists.to_string().contains("user `carol` already exists"),
            "{exists}"
        );
        // An unknown user is reported before a password is asked for.
        let mut typed = Typed::terminal(&[]);
        let unknown = run_with(&["passwd", "dave"], &path, &mut typed).unwrap_err();
        assert!(unknown.to_string().starts_with("no user `dave` in "));
        assert!(typed.asked.is_empty());
        let disable = run_with(&["disable", "dave"], &path, &mut stdin("")).unwrap_err();
        assert!(
            disable
                .to_string()
                .contains("check the name with `portless user list`")
        );
    }

    #[test]
    fn users_file_defaults_and_environment() {
        let parsed = TestCli::try_parse_from(["portless", "user", "list"]).unwrap();
        let Top::User(UserCommand::List(args)) = parsed.command else {
            panic!("not list");
        };
        assert_eq!(
            args.file.path().unwrap(),
            PathBuf::from("./users_database.yml")
        );
        let help = TestCli::try_parse_from(["portless", "user", "add", "--help"])
            .unwrap_err()
            .to_string();
        assert!(help.contains("PORTLESS_USERS_FILE"), "{help}");
        assert!(help.contains("--password-stdin"));
    }
}
