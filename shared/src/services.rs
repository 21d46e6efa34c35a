//! The clients one Lambda instance shares across its invocations, built once
//! per cold start with the independent pieces of work done concurrently.

use aws_config::SdkConfig;

use crate::{
    config::{Config, ConfigError},
    domain::PhoneNumber,
    secrets::{SecretStore, SecretsError},
    sms::{PlivoClient, SmsError},
    store::{Store, StoreError},
    token::TokenSigner,
};

pub struct Services {
    pub config: Config,
    pub store: Store,
    pub sms: PlivoClient,
    pub secrets: SecretStore,
    pub tokens: TokenSigner,
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
    Sms(#[from] SmsError),
}

impl Services {
    pub async fn from_env() -> Result<Self, InitError> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest());
        Self::init(Config::from_env()?, aws).await
    }

    /// For `main`: on failure, one log line naming the cause and a clean
    /// exit (no panic backtrace); Lambda reports the failed init.
    pub async fn from_env_or_exit() -> Self {
        match Self::from_env().await {
            Ok(services) => services,
            Err(err) => {
                tracing::error!(error = %crate::error_chain(&err), "cold start failed");
                std::process::exit(1);
            }
        }
    }

    /// `aws` yields the SDK configuration (region, credentials, endpoints);
    /// it is awaited alongside the Redis connect.
    pub async fn init(
        config: Config,
        aws: impl Future<Output = SdkConfig>,
    ) -> Result<Self, InitError> {
        // rustls needs one process-wide crypto provider; aws-lc-rs is the one
        // the AWS SDK already links. Err means one is installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let store = Store::new(&config.redis)?;
        let sms = PlivoClient::new(&config.plivo)?;
        let secrets = async {
            let client = aws_sdk_secretsmanager::Client::new(&aws.await);
            SecretStore::load(client, config.secret_id.clone()).await
        };
        let metadata = async { PhoneNumber::warm_up() };
        let (secrets, redis, ()) = tokio::join!(secrets, store.warm_up(), metadata);
        if let Err(err) = redis {
            // Not fatal: the connection is retried per request, which answers
            // 503 until Redis is back, with no cold start needed.
            tracing::warn!(error = %crate::error_chain(&err), "redis not reachable at cold start");
        }
        Ok(Self {
            tokens: TokenSigner::new(&config.token),
            secrets: secrets?,
            store,
            sms,
            config,
        })
    }
}
