//! `POST /api/otp/verify`: parse, run the verify use case (through
//! idempotency when the client sent a key, so a lost reply can be fetched
//! again with its token), answer.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    DEADLINE_MARGIN, deadline_of,
    errors::fail,
    idempotent::once,
    json_response, outer_deadline,
    parse::{captcha_token, client_ip, idempotency_key, parse},
};
use crate::{
    domain::{CaptchaToken, ClientIp, OtpCode, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    store::deadline,
    usecase::{
        captcha::CaptchaFailure,
        idempotency::Operation,
        verify::{Guess, VerifyError, verify_otp as verify_use_case},
    },
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    phone_number: String,
    otp: String,
    /// A solved CAPTCHA, when a 403 `captcha_required` asked for one.
    #[serde(default)]
    captcha_token: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedBody {
    status: &'static str,
    message: &'static str,
    verification_token: String,
    expires_in_seconds: u64,
}

/// `POST /api/otp/verify`
pub async fn verify_otp(services: &Services, event: Request) -> Response<Body> {
    services.secrets.refresh_if_due();
    let hard = deadline_of(&event, DEADLINE_MARGIN);
    deadline::within(hard, verify_within(services, event, hard)).await
}

async fn verify_within(services: &Services, event: Request, hard: Instant) -> Response<Body> {
    // The CAPTCHA provider gets less time than Redis, which answers last.
    let deadline = outer_deadline(services, hard);
    let length = services.config.policy.code_length;
    let input = parse::<VerifyBody>(
        &event,
        "Request body must be a JSON object with string fields \"phoneNumber\" and \"otp\".",
    )
    .and_then(|body| {
        let key = idempotency_key(&event)?;
        let phone = PhoneNumber::parse(&body.phone_number)?;
        let code = OtpCode::parse(&body.otp, length)?;
        let captcha = captcha_token(body.captcha_token.as_ref())?;
        Ok((phone, code, captcha, key))
    });
    let (phone, code, captcha, key) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let client = client_ip(&event);
    let attempt = Attempt {
        phone: &phone,
        code: &code,
        client: &client,
        captcha: captcha.as_ref(),
        deadline,
    };
    match key {
        None => check(services, attempt).await,
        Some(key) => {
            once(
                services,
                &key,
                &phone,
                Operation::Verify(&code),
                hard,
                || check(services, attempt),
            )
            .await
        }
    }
}

/// One parsed guess.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    phone: &'a PhoneNumber,
    code: &'a OtpCode,
    client: &'a ClientIp,
    captcha: Option<&'a CaptchaToken>,
    deadline: Instant,
}

async fn check(services: &Services, attempt: Attempt<'_>) -> Response<Body> {
    let phone = attempt.phone;
    let guess = Guess {
        phone,
        code: attempt.code,
        client: attempt.client,
        captcha: attempt.captcha,
        deadline: attempt.deadline,
    };
    let result = verify_use_case(services, guess).await;
    let outcome_metric = match &result {
        Ok(_) => Some(Metric::OtpVerified),
        Err(VerifyError::InvalidCode { .. }) => Some(Metric::OtpRejected),
        Err(VerifyError::Locked { .. } | VerifyError::TooManyFromIp { .. }) => {
            Some(Metric::RateLimited)
        }
        Err(VerifyError::Captcha(CaptchaFailure::Required(_))) => Some(Metric::CaptchaRequired),
        Err(VerifyError::Captcha(CaptchaFailure::Invalid { .. })) => Some(Metric::CaptchaRejected),
        Err(_) => None,
    };
    metrics::emit(phone.country(), outcome_metric.as_slice());
    match result {
        Ok(token) => {
            tracing::info!(phone = %phone.masked(), outcome = "approved", "otp verified");
            json_response(
                StatusCode::OK,
                &ApprovedBody {
                    status: "approved",
                    message: "OTP verified successfully.",
                    verification_token: token.token,
                    expires_in_seconds: token.expires_in.as_secs(),
                },
            )
        }
        Err(err) => fail(&err, Some(phone)),
    }
}
