//! Password policy and argon2id hashing.
//!
//! Rules: hashing is CPU- and memory-heavy by design, so it runs on a fixed pool of threads
//! (a login flood queues instead of exhausting memory); unknown emails are verified against a
//! dummy hash so both failure paths cost the same.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

/// A fixed set of threads for password hashing: at most one argon2 computation per core, each
/// ~19 MiB, however many logins arrive; the rest wait in a short queue. (The allocator side of
/// that memory is handled in `main`: see `release_large_allocations`.)
pub struct HashPool {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl HashPool {
    pub fn new(threads: usize) -> std::io::Result<HashPool> {
        // A short queue: callers wait (asynchronously) rather than piling up work.
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(threads.max(1) * 4);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(mut rx) => rx.blocking_recv(),
                            Err(_) => return,
                        };
                        match job {
                            Some(job) => job(),
                            None => return,
                        }
                    }
                })?;
        }
        Ok(HashPool { jobs: tx })
    }

    /// Runs `f` on the pool and waits for it without blocking the async runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("password hashing pool stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("password hashing job panicked"))
    }
}

/// Shortest and longest accepted passwords, in characters.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// The most common passwords that pass the length rule (from public breach corpora).
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "11111111",
    "00000000",
    "abcdefgh",
    "abc12345",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "letmein1",
    "passw0rd",
    "trustno1",
    "superman",
    "starwars",
    "dragon12",
    "monkey12",
    "12341234",
    "87654321",
    "qwertyui",
];

/// Why a password is refused; the message is safe to show.
pub fn check_policy(password: &str, email: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("password must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Err(format!("password must be at most {MAX_LEN} characters"));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err("password must contain at least 4 different characters".into());
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err("password is too common".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (!local.is_empty() && lower == local) {
        return Err("password must not be the email address".into());
    }
    Ok(())
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

/// `false` for a wrong password or an unparsable stored hash.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("short", "a@b.c").is_err());
        assert!(check_policy("aaaaaaaaaa", "a@b.c").is_err());
        assert!(check_policy("Password1", "a@b.c").is_err());
        assert!(check_policy("someone.x", "someone.x@b.c").is_err());
        assert!(check_policy("correct horse battery", "a@b.c").is_ok());
        assert!(check_policy(&"ab1!".repeat(40), "a@b.c").is_err());
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("x", "not a hash"));
    }
}
