//! The AWS SDK set-up shared by the DynamoDB store and the S3 import archive: region and
//! credentials from the standard AWS chain, an optional endpoint override (DynamoDB Local,
//! moto), bounded retries and timeouts.
//!
//! Rules:
//! - No region configured: us-east-1 (an emulator ignores it, the SDK refuses to sign without).
//! - No credentials found: one line on what to set, at start, instead of every request failing
//!   later with the provider chain's nested errors.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// How long the credential chain may take at start-up (instance metadata lookups included).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client needs beyond the standard chain.
#[derive(Debug, Clone)]
pub struct ClientOptions<'a> {
    /// Named in the error when no credentials are found ("DynamoDB", "S3").
    pub service: &'a str,
    /// What works against the service's local emulator, for that error.
    pub emulator_hint: &'a str,
    pub endpoint: Option<&'a str>,
    /// Attempts per request, first included (standard retry with jittered backoff).
    pub max_attempts: u32,
    /// Bound on one attempt (`None`: unbounded, for transfers of large bodies).
    pub attempt_timeout: Option<Duration>,
    /// Bound on a whole call, retries included.
    pub operation_timeout: Option<Duration>,
}

/// The SDK configuration for `opts` (see the module rules).
pub async fn sdk_config(opts: &ClientOptions<'_>) -> anyhow::Result<SdkConfig> {
    let mut timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(2));
    if let Some(t) = opts.attempt_timeout {
        timeouts = timeouts.operation_attempt_timeout(t);
    }
    if let Some(t) = opts.operation_timeout {
        timeouts = timeouts.operation_timeout(t);
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            // Short backoffs: a caller told to retry is better off than one kept waiting.
            RetryConfig::standard()
                .with_max_attempts(opts.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(1)),
        )
        .timeout_config(timeouts.build());
    if let Some(url) = opts.endpoint {
        loader = loader.endpoint_url(url);
    }
    let mut conf = loader.load().await;
    if conf.region().is_none() {
        tracing::info!("no AWS region configured; using us-east-1");
        conf = conf
            .into_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build();
    }
    check_credentials(&conf, opts).await?;
    Ok(conf)
}

async fn check_credentials(conf: &SdkConfig, opts: &ClientOptions<'_>) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    let missing = format!(
        "no AWS credentials found for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
         AWS_REGION), or AWS_PROFILE, or run with an IAM role; {}",
        opts.service, opts.emulator_hint
    );
    let provider = conf
        .credentials_provider()
        .ok_or_else(|| anyhow::anyhow!(missing.clone()))?;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            // The chain's errors (every provider tried, instance metadata included) are long;
            // kept for debugging, out of the user's way.
            tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "credential chain");
            anyhow::bail!(missing)
        }
        Err(_) => anyhow::bail!(
            "the AWS credential chain gave no answer within {}s. {missing}",
            CREDENTIALS_TIMEOUT.as_secs()
        ),
    }
}
