//! Users, their API tokens, and the audit log: who may do what, and who did what.
//! Creating, changing and deleting users and tokens is the admin's (the role check in
//! `auth.rs` enforces it before any handler here runs).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use nines_model::api::{
    AuditQuery, AuditView, PasswordRequest, TokenCreateRequest, TokenCreated, TokenView,
    UserAddRequest, UserView,
};
use nines_model::auth::{check_password, check_user_name};
use nines_store::{TokenInfo, UserRecord};

use super::AppState;
use super::error::ApiErr;

fn view(u: &UserRecord) -> UserView {
    UserView {
        name: u.name.clone(),
        role: u.role,
        created_at: u.created_at,
    }
}

fn token_view(t: &TokenInfo) -> TokenView {
    TokenView {
        id: t.id,
        name: t.name.clone(),
        user: t.user.clone(),
        role: t.role,
        created_at: t.created_at,
        last_used_at: t.last_used_at,
    }
}

/// argon2id of a password (in a blocking thread: it takes tens of milliseconds).
pub async fn hash_password(password: String) -> Result<String, ApiErr> {
    tokio::task::spawn_blocking(move || crate::users::hash_password(&password))
        .await
        .map_err(|e| ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// The users, by name (never their password hashes).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>)))]
pub async fn list_users(State(st): State<AppState>) -> Result<Json<Vec<UserView>>, ApiErr> {
    Ok(Json(st.store.users().await?.iter().map(view).collect()))
}

/// Adds a user with a role and a password (at least 12 characters).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserAddRequest,
    responses((status = 201, body = UserView), (status = 400, body = nines_model::api::ApiError),
              (status = 403, body = nines_model::api::ApiError), (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_user(
    State(st): State<AppState>,
    Json(req): Json<UserAddRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiErr> {
    let name = check_user_name("name", &req.name)?;
    if name == "admin" || name == "anonymous" {
        return Err(ApiErr::field(
            "name",
            format!(
                "`{name}` is reserved (the bootstrap token's name, or the audit log's word for nobody)"
            ),
        ));
    }
    check_password("password", &req.password)?;
    let hash = hash_password(req.password).await?;
    let u = st.store.add_user(&name, req.role, &hash).await?;
    Ok((StatusCode::CREATED, Json(view(&u))))
}

/// Deletes a user, their tokens and their sessions (at once: a deleted user's token stops
/// working on its next request).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_user(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiErr> {
    let name = check_user_name("name", &name)?;
    let u = st
        .store
        .user(&name)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("user `{name}`")))?;
    st.store.delete_user(&name).await?;
    st.tokens.clear();
    Ok(Json(view(&u)))
}

/// Sets a user's password; their browser sessions end.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "users",
    params(("name" = String, Path)), request_body = PasswordRequest,
    responses((status = 200, body = UserView), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn set_password(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<PasswordRequest>,
) -> Result<Json<UserView>, ApiErr> {
    let name = check_user_name("name", &name)?;
    check_password("password", &req.password)?;
    let u = st
        .store
        .user(&name)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("user `{name}`")))?;
    let hash = hash_password(req.password).await?;
    st.store.set_password(&name, &hash).await?;
    Ok(Json(view(&u)))
}

/// Creates an API token for a user; the answer carries the token, once (only its hash
/// is kept).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = TokenCreateRequest,
    responses((status = 201, body = TokenCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError), (status = 409, body = nines_model::api::ApiError)))]
pub async fn create_token(
    State(st): State<AppState>,
    Json(req): Json<TokenCreateRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiErr> {
    let user = check_user_name("user", &req.user)?;
    let label = nines_model::input::Text::parse("name", &req.name)?.to_string();
    if label.chars().count() > 64 {
        return Err(ApiErr::field(
            "name",
            "a token's name has at most 64 characters",
        ));
    }
    if st.store.user(&user).await?.is_none() {
        return Err(ApiErr::not_found(format!("user `{user}`")));
    }
    let token = crate::users::new_secret();
    let t = st
        .store
        .add_user_token(&user, &label, &super::hash_token(&token))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: token_view(&t),
        }),
    ))
}

/// API tokens (never the tokens themselves), of one user or all.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "users",
    params(("user" = Option<String>, Query)),
    responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(st): State<AppState>,
    Query(q): Query<nines_model::api::TokenQuery>,
) -> Result<Json<Vec<TokenView>>, ApiErr> {
    let user = q
        .user
        .as_deref()
        .map(|u| check_user_name("user", u))
        .transpose()?;
    Ok(Json(
        st.store
            .tokens(user.as_deref())
            .await?
            .iter()
            .map(token_view)
            .collect(),
    ))
}

/// Revokes an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "users",
    params(("id" = i64, Path)),
    responses((status = 200, body = TokenView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_token(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<TokenView>, ApiErr> {
    let t = st
        .store
        .tokens(None)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiErr::not_found(format!("token {id}")))?;
    st.store.delete_token(id).await?;
    st.tokens.clear();
    Ok(Json(token_view(&t)))
}

/// The audit log, newest first: every change made through the API or the web UI (and
/// every login), who made it, from where, and how it ended.
#[utoipa::path(get, path = "/api/v1/audit", tag = "users",
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditView>), (status = 400, body = nines_model::api::ApiError)))]
pub async fn list_audit(
    State(st): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiErr> {
    let since = match q.since.as_deref() {
        None => Utc::now() - chrono::Duration::days(30),
        Some(s) => {
            let d = nines_model::api::parse_duration(s)
                .map_err(|e| ApiErr::field("since", format!("since: {e}")))?;
            let d = chrono::Duration::from_std(d)
                .map_err(|_| ApiErr::field("since", "since is too far back"))?;
            Utc::now() - d
        }
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiErr::field("limit", "limit must be 1-10000"));
    }
    Ok(Json(
        st.store
            .audit(since, limit)
            .await?
            .into_iter()
            .map(|a| AuditView {
                at: a.at,
                who: a.who,
                action: a.action,
                target: a.target,
                from: a.from,
                outcome: a.outcome,
                via: a.via,
            })
            .collect(),
    ))
}
