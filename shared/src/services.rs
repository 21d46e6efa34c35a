//! The clients one Lambda instance shares across its invocations, built once
//! per cold start with the independent pieces of work done concurrently.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;

use crate::{
    captcha::{CaptchaClient, CaptchaError},
    config::{Config, ConfigError},
    domain::PhoneNumber,
    plivo::{
        PlivoClient, PlivoError,
        lookup::{LookupClient, LookupError},
    },
    secrets::{SecretRules, SecretStore, SecretsError},
    store::{Store, StoreError},
    token::TokenSigner,
};

/// Which function the clients are for: request-otp sends SMS and places
/// calls; plivo-webhook places fallback calls; verify-otp never calls Plivo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    RequestOtp,
    VerifyOtp,
    PlivoWebhook,
}

/// Milliseconds since `started`, to a tenth: finer is noise, and long runs
/// of digits in a log line look like codes to the leak audit.
fn millis_of(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e4).round() / 10.0
}

/// Runs `f` and says how long it took, in milliseconds.
async fn timed<T>(f: impl Future<Output = T>) -> (T, f64) {
    let started = Instant::now();
    let out = f.await;
    (out, millis_of(started))
}

pub struct Services {
    pub config: Config,
    pub store: Store,
    pub plivo: PlivoClient,
    pub secrets: SecretStore,
    pub tokens: TokenSigner,
    /// With `CAPTCHA_PROVIDER`.
    pub captcha: Option<CaptchaClient>,
    /// With `LOOKUP_BLOCKED_LINE_TYPES`.
    pub lookup: Option<LookupClient>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot load the secret")]
    Secrets(#[from] SecretsError),
    #[error("cannot set up redis")]
    Store(#[from] StoreError),
    #[error("cannot set up the plivo client")]
    Plivo(#[from] PlivoError),
    #[error("cannot set up the plivo lookup client")]
    Lookup(#[from] LookupError),
    #[error("cannot set up the captcha client")]
    Captcha(#[from] CaptchaError),
    #[error("CAPTCHA_PROVIDER is set but the secret has no captcha_secret")]
    NoCaptchaSecret,
}

/// The AWS SDK's configuration as the functions load it: the defaults, but
/// with retries shaped for a cold-start storm. After a deploy or a burst,
/// many instances ask Secrets Manager for the secret at once and some are
/// throttled; the default three attempts let an unlucky instance fail its
/// init. Six attempts with the SDK's jittered exponential backoff from
/// 200 ms, each wait capped at 2 s, sleep at most 5 s in all, well inside
/// Lambda's 10 s init.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(2)),
    )
}

impl Services {
    pub async fn from_env(role: Role) -> Result<Self, InitError> {
        let aws = aws_config_loader().load();
        Self::init(Config::from_env()?, aws, role).await
    }

    /// For `main`: on failure, one log line naming the cause and a clean
    /// exit (no panic backtrace); Lambda reports the failed init.
    pub async fn from_env_or_exit(role: Role) -> Self {
        match Self::from_env(role).await {
            Ok(services) => services,
            Err(err) => {
                tracing::error!(error = %crate::error_chain(&err), "cold start failed");
                if matches!(err, InitError::Secrets(_)) {
                    crate::metrics::dependency_failed(crate::metrics::Dependency::Secrets);
                }
                std::process::exit(1);
            }
        }
    }

    /// `aws` yields the SDK configuration (region, credentials, endpoints);
    /// it is awaited alongside the Redis connect.
    pub async fn init(
        config: Config,
        aws: impl Future<Output = SdkConfig>,
        role: Role,
    ) -> Result<Self, InitError> {
        let started = Instant::now();
        // rustls needs one process-wide crypto provider; aws-lc-rs is the one
        // the AWS SDK already links. Err means one is installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let store = Store::new(&config.redis)?;
        let plivo = PlivoClient::new(&config.plivo)?;
        let captcha = config
            .fraud
            .captcha
            .as_ref()
            .map(CaptchaClient::new)
            .transpose()?;
        let lookup = match (role, &config.fraud.lookup) {
            (Role::RequestOtp, Some(lookup)) => Some(LookupClient::new(lookup)?),
            _ => None,
        };
        // The independent pieces of a cold start, side by side: the secret
        // (SDK config, then one HTTPS call), Redis (connect, load scripts),
        // Plivo (connect and TLS, so the first SMS does not pay for them),
        // and libphonenumber's metadata (CPU, while the others wait on I/O).
        let secrets = timed(async {
            let (aws, sdk_config_ms) = timed(aws).await;
            let client = aws_sdk_secretsmanager::Client::new(&aws);
            let rules = SecretRules {
                code_length: config.policy.code_length,
                algorithm: config.token.algorithm,
            };
            let store = SecretStore::load(
                client,
                config.secret_id.clone(),
                rules,
                config.secret_refresh,
            );
            (store.await, sdk_config_ms)
        });
        let calls_plivo = match role {
            Role::RequestOtp => true,
            Role::PlivoWebhook => config.voice.fallback,
            Role::VerifyOtp => false,
        };
        let plivo_warm = timed(async {
            if calls_plivo {
                plivo.warm_up().await;
            }
        });
        let metadata = timed(async { PhoneNumber::warm_up() });
        let (
            ((secrets, sdk_config_ms), secret_ms),
            (redis, redis_ms),
            ((), plivo_ms),
            ((), metadata_ms),
        ) = tokio::join!(secrets, timed(store.warm_up()), plivo_warm, metadata);
        if let Err(err) = redis {
            // Not fatal: the connection is retried per request, which answers
            // 503 until Redis is back, with no cold start needed.
            tracing::warn!(error = %crate::error_chain(&err), "redis not reachable at cold start");
        }
        tracing::info!(
            sdk_config_ms,
            secret_ms,
            redis_ms,
            plivo_ms,
            metadata_ms,
            total_ms = millis_of(started),
            "cold start"
        );
        let secrets = secrets?;
        if captcha.is_some() && secrets.current().captcha_secret.is_none() {
            // Every step-up would fail closed: say so once, at the start.
            return Err(InitError::NoCaptchaSecret);
        }
        Ok(Self {
            tokens: TokenSigner::new(&config.token),
            secrets,
            store,
            plivo,
            captcha,
            lookup,
            config,
        })
    }
}
