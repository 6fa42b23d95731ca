//! A position in a user's change feed, and whether a reader may go on from it.
//!
//! Rules:
//! - A position is only meaningful for one user in one store epoch (the store's change
//!   sequence restarts with a new store): a position of another user or another epoch, one
//!   ahead of the feed's head, or one below its floor (changes there were compacted or their
//!   tombstones forgotten, `store::changes`) is refused with [`RESYNC_REQUIRED`]; the reader
//!   starts again from 0, which lists every current sample.
//! - REST hands positions out as opaque tokens: base64url of `check:user:seq:epoch`, where
//!   `check` is a short hash of the rest. It is not a secret (the user binding is checked
//!   against the caller); it makes a token damaged in transit (a digit of `seq` lost or
//!   changed) fail as `invalid_token` instead of silently skipping or repeating changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::ChangePage;

/// The error code for a position the reader cannot go on from.
pub const RESYNC_REQUIRED: &str = "resync_required";

/// Where a reader stands: after change `seq` of `user`'s feed in store epoch `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub user: Uuid,
    pub seq: u64,
}

/// Why a reader must start again from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resync {
    OtherUser,
    OtherEpoch,
    AheadOfHead { seq: u64, head: u64 },
    BelowFloor { seq: u64, floor: u64 },
}

impl Resync {
    /// Why, for people (never the other user's id).
    pub fn reason(&self) -> String {
        match self {
            Resync::OtherUser => "this position belongs to another user's change feed".into(),
            Resync::OtherEpoch => {
                "this position is from another store epoch: the change sequence was restarted"
                    .into()
            }
            Resync::AheadOfHead { seq, head } => {
                format!("position {seq} is ahead of the feed's latest change {head}")
            }
            Resync::BelowFloor { seq, floor } => format!(
                "position {seq} is older than the oldest complete position {floor} (changes \
                 before it were compacted or their deletions forgotten after {} days)",
                crate::store::TOMBSTONE_DAYS
            ),
        }
    }
}

/// Whether a reader after `seq` may go on with `page` (a page read after `seq`).
pub fn check_resume(seq: u64, page: &ChangePage) -> Result<(), Resync> {
    if seq > page.head {
        return Err(Resync::AheadOfHead {
            seq,
            head: page.head,
        });
    }
    if seq != 0 && seq < page.floor {
        return Err(Resync::BelowFloor {
            seq,
            floor: page.floor,
        });
    }
    Ok(())
}

/// A token that is not one this server issued (or was damaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken;

fn check(rest: &str) -> String {
    let digest = Sha256::digest(format!("clarity-change-feed:{rest}").as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Position {
    /// `user`'s position `seq` for `reader`, or why it cannot be used.
    pub fn bind(&self, reader: Uuid, epoch: &str) -> Result<u64, Resync> {
        if self.user != reader {
            Err(Resync::OtherUser)
        } else if self.epoch != epoch {
            Err(Resync::OtherEpoch)
        } else {
            Ok(self.seq)
        }
    }

    pub fn token(&self) -> String {
        let rest = format!("{}:{}:{}", self.user, self.seq, self.epoch);
        URL_SAFE_NO_PAD.encode(format!("{}:{rest}", check(&rest)))
    }

    pub fn from_token(token: &str) -> Result<Position, InvalidToken> {
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidToken)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidToken)?;
        let (sum, rest) = raw.split_once(':').ok_or(InvalidToken)?;
        if sum != check(rest) {
            return Err(InvalidToken);
        }
        let mut parts = rest.splitn(3, ':');
        let user = parts.next().and_then(|u| Uuid::parse_str(u).ok());
        let seq = parts.next().and_then(|s| s.parse::<u64>().ok());
        match (user, seq, parts.next()) {
            (Some(user), Some(seq), Some(epoch)) => Ok(Position {
                epoch: epoch.to_owned(),
                user,
                seq,
            }),
            _ => Err(InvalidToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn page(head: u64, floor: u64) -> ChangePage {
        ChangePage {
            head,
            floor,
            ..Default::default()
        }
    }

    #[test]
    fn a_position_is_checked_against_head_and_floor() {
        assert_eq!(check_resume(0, &page(0, 0)), Ok(()));
        assert_eq!(check_resume(0, &page(9, 5)), Ok(()), "0 is always valid");
        assert_eq!(check_resume(5, &page(9, 5)), Ok(()));
        assert_eq!(check_resume(9, &page(9, 5)), Ok(()));
        assert_eq!(
            check_resume(4, &page(9, 5)),
            Err(Resync::BelowFloor { seq: 4, floor: 5 })
        );
        assert_eq!(
            check_resume(10, &page(9, 0)),
            Err(Resync::AheadOfHead { seq: 10, head: 9 })
        );
    }

    #[test]
    fn a_position_binds_its_user_and_epoch() {
        let user = Uuid::now_v7();
        let p = Position {
            epoch: "e1".into(),
            user,
            seq: 3,
        };
        assert_eq!(p.bind(user, "e1"), Ok(3));
        assert_eq!(p.bind(Uuid::now_v7(), "e1"), Err(Resync::OtherUser));
        assert_eq!(p.bind(user, "e2"), Err(Resync::OtherEpoch));
    }

    #[test]
    fn a_damaged_token_is_invalid_not_another_position() {
        let p = Position {
            epoch: "abc".into(),
            user: Uuid::now_v7(),
            seq: 12345,
        };
        let token = p.token();
        // The same text with one digit of seq changed, re-encoded: the check catches it.
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(raw.replace(":12345:", ":12346:"));
        assert_eq!(Position::from_token(&forged), Err(InvalidToken));
        assert_eq!(
            Position::from_token(&token[..token.len() - 1]),
            Err(InvalidToken)
        );
        assert_eq!(Position::from_token("0"), Err(InvalidToken));
        assert_eq!(Position::from_token(""), Err(InvalidToken));
    }

    proptest! {
        #[test]
        fn tokens_round_trip(seq in any::<u64>(), epoch in "[ -~]{0,40}") {
            let p = Position { epoch, user: Uuid::new_v4(), seq };
            prop_assert_eq!(Position::from_token(&p.token()), Ok(p));
        }

        #[test]
        fn decoding_never_panics(s in "\\PC{0,80}") {
            let _ = Position::from_token(&s);
        }
    }
}
