//! `nines user …`, `nines token …` and `nines audit list`: the people who use nines,
//! their API tokens, and what they did.

use anyhow::anyhow;
use nines_model::api::{
    AuditView, PasswordRequest, TokenCreateRequest, TokenCreated, TokenView, UserAddRequest,
    UserView,
};
use nines_model::auth::{UserRole, check_user_name};

use crate::client::Client;
use crate::commands::{read_password, urlencode};
use crate::output::{opt, print, table, time};
use crate::{AuditCmd, Format, TokenCmd, UserCmd};

fn name(n: &str) -> anyhow::Result<String> {
    check_user_name("name", n)
        .map(|n| urlencode(&n))
        .map_err(|e| anyhow!("{}", e.message))
}

pub async fn user_command(client: &Client, f: Format, cmd: UserCmd) -> anyhow::Result<i32> {
    match cmd {
        UserCmd::Add {
            name: n,
            role,
            password_file,
        } => {
            let role: UserRole = role.parse().map_err(|e: String| anyhow!("--role: {e}"))?;
            check_user_name("name", &n).map_err(|e| anyhow!("{}", e.message))?;
            let password = read_password("--password-file", &password_file)?;
            let u: UserView = client
                .post(
                    "/api/v1/users",
                    &UserAddRequest {
                        name: n,
                        role,
                        password,
                    },
                )
                .await?;
            print(f, &u, |u| {
                let mut t = table(&["name", "role", "created"]);
                t.add_row(vec![
                    u.name.clone(),
                    u.role.to_string(),
                    time(&u.created_at),
                ]);
                t
            })?;
            Ok(0)
        }
        UserCmd::List => {
            let users: Vec<UserView> = client.get("/api/v1/users").await?;
            print(f, &users, |users| {
                let mut t = table(&["name", "role", "created"]);
                for u in users {
                    t.add_row(vec![
                        u.name.clone(),
                        u.role.to_string(),
                        time(&u.created_at),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        UserCmd::Delete { name: n } => {
            let u: UserView = client
                .delete(&format!("/api/v1/users/{}", name(&n)?))
                .await?;
            print(f, &u, |u| {
                let mut t = table(&["deleted", "role"]);
                t.add_row(vec![u.name.clone(), u.role.to_string()]);
                t
            })?;
            Ok(0)
        }
        UserCmd::Password {
            name: n,
            password_file,
        } => {
            let password = read_password("--password-file", &password_file)?;
            let u: UserView = client
                .put(
                    &format!("/api/v1/users/{}/password", name(&n)?),
                    &PasswordRequest { password },
                )
                .await?;
            print(f, &u, |u| {
                let mut t = table(&["password set for", "role"]);
                t.add_row(vec![u.name.clone(), u.role.to_string()]);
                t
            })?;
            Ok(0)
        }
    }
}

fn token_table(tokens: &[TokenView]) -> comfy_table::Table {
    let mut t = table(&["id", "name", "user", "role", "created", "last used"]);
    for k in tokens {
        t.add_row(vec![
            k.id.to_string(),
            k.name.clone(),
            k.user.clone().unwrap_or_else(|| "(bootstrap)".into()),
            k.role.to_string(),
            time(&k.created_at),
            k.last_used_at
                .as_ref()
                .map(time)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    t
}

pub async fn token_command(client: &Client, f: Format, cmd: TokenCmd) -> anyhow::Result<i32> {
    match cmd {
        TokenCmd::Create { user, name: label } => {
            let created: TokenCreated = client
                .post("/api/v1/tokens", &TokenCreateRequest { user, name: label })
                .await?;
            match f {
                Format::Json => println!("{}", serde_json::to_string_pretty(&created)?),
                Format::Table => {
                    println!("{}", created.token);
                    eprintln!(
                        "token `{}` of {} ({}): shown this once; nines keeps only its hash",
                        created.info.name,
                        opt(&created.info.user),
                        created.info.role
                    );
                }
            }
            Ok(0)
        }
        TokenCmd::List { user } => {
            let path = match user {
                Some(u) => format!("/api/v1/tokens?user={}", name(&u)?),
                None => "/api/v1/tokens".to_string(),
            };
            let tokens: Vec<TokenView> = client.get(&path).await?;
            print(f, &tokens, |t| token_table(t))?;
            Ok(0)
        }
        TokenCmd::Delete { id } => {
            let t: TokenView = client.delete(&format!("/api/v1/tokens/{id}")).await?;
            print(f, &t, |t| token_table(std::slice::from_ref(t)))?;
            Ok(0)
        }
    }
}

pub async fn audit_command(client: &Client, f: Format, cmd: AuditCmd) -> anyhow::Result<i32> {
    match cmd {
        AuditCmd::List { since, limit } => {
            let lines: Vec<AuditView> = client
                .get(&format!(
                    "/api/v1/audit?since={}&limit={limit}",
                    urlencode(&since)
                ))
                .await?;
            print(f, &lines, |lines| {
                let mut t = table(&["at", "who", "action", "target", "from", "outcome", "via"]);
                for a in lines {
                    t.add_row(vec![
                        time(&a.at),
                        a.who.clone(),
                        a.action.clone(),
                        a.target.clone(),
                        a.from.clone(),
                        a.outcome.clone(),
                        a.via.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
    }
}
