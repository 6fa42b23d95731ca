//! Account writes on the writer thread: users and refresh tokens (rotation is one op, so
//! spending the old token and storing the new one commit together or not at all).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::writer::other;
use crate::store::{RefreshTokenRecord, RotateOutcome, StoreError, StoreResult, UserRecord};

pub(super) fn create_user(c: &Connection, u: &UserRecord) -> StoreResult<()> {
    let res = c
        .prepare_cached(
            "INSERT INTO users (id, email, display_name, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                u.id.as_bytes(),
                u.email,
                u.display_name,
                u.password_hash,
                u.created_at.timestamp_millis()
            ])
        });
    match res {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(StoreError::EmailTaken);
        }
        Err(e) => return Err(other(e)),
    }
    // An erased id comes back only as a Cognito user's `sub` provisioned again: a new
    // account, which takes writes.
    c.prepare_cached("DELETE FROM erased_users WHERE user_id = ?1")
        .and_then(|mut st| st.execute([&u.id.as_bytes()[..]]))
        .map_err(other)?;
    Ok(())
}

pub(super) fn insert_refresh(c: &Connection, r: &RefreshTokenRecord) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            &r.token_hash[..],
            r.user_id.as_bytes(),
            r.family_id.as_bytes(),
            r.expires_at.timestamp_millis()
        ])
    })
    .map(|_| ())
    .map_err(other)
}

pub(super) fn rotate(
    c: &Connection,
    old_hash: &[u8; 32],
    mut new: RefreshTokenRecord,
    now: DateTime<Utc>,
) -> StoreResult<RotateOutcome> {
    struct Row {
        user: Vec<u8>,
        family: Vec<u8>,
        expires_at: i64,
        used: bool,
        revoked: bool,
    }
    let row = c
        .prepare_cached(
            "SELECT user_id, family_id, expires_at, used_at IS NOT NULL, revoked
             FROM refresh_tokens WHERE token_hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row([&old_hash[..]], |r| {
                Ok(Row {
                    user: r.get(0)?,
                    family: r.get(1)?,
                    expires_at: r.get(2)?,
                    used: r.get(3)?,
                    revoked: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(other)?;
    let Some(Row {
        user,
        family,
        expires_at,
        used,
        revoked,
    }) = row
    else {
        return Ok(RotateOutcome::Invalid);
    };
    let family_id = Uuid::from_slice(&family).map_err(|e| StoreError::Other(e.into()))?;
    let user_id = Uuid::from_slice(&user).map_err(|e| StoreError::Other(e.into()))?;
    if revoked {
        return Ok(RotateOutcome::Invalid);
    }
    if used {
        c.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?1")
            .and_then(|mut st| st.execute([&family[..]]))
            .map_err(other)?;
        return Ok(RotateOutcome::Reused { user_id, family_id });
    }
    if expires_at <= now.timestamp_millis() {
        return Ok(RotateOutcome::Invalid);
    }
    c.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1")
        .and_then(|mut st| st.execute(params![&old_hash[..], now.timestamp_millis()]))
        .map_err(other)?;
    new.family_id = family_id;
    new.user_id = user_id;
    insert_refresh(c, &new)?;
    Ok(RotateOutcome::Rotated { user_id, family_id })
}

/// Revokes the family of `token_hash` when the token is `user`'s; returns the family.
pub(super) fn revoke_family(
    c: &Connection,
    token_hash: &[u8; 32],
    user: Uuid,
) -> StoreResult<Option<Uuid>> {
    let row: Option<(Vec<u8>, Vec<u8>)> = c
        .prepare_cached("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?1")
        .and_then(|mut st| {
            st.query_row([&token_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(other)?;
    let Some((_, family)) = row.filter(|(owner, _)| owner[..] == user.as_bytes()[..]) else {
        return Ok(None);
    };
    c.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?1")
        .and_then(|mut st| st.execute([&family[..]]))
        .map_err(other)?;
    Uuid::from_slice(&family)
        .map(Some)
        .map_err(|e| StoreError::Other(e.into()))
}
