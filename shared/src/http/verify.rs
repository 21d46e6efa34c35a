//! `POST /api/otp/verify`: parse, run the verify use case, answer.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    DEADLINE_MARGIN, deadline_of,
    errors::fail,
    json_response,
    parse::{captcha_token, client_ip, parse},
};
use crate::{
    domain::{OtpCode, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    usecase::{
        captcha::CaptchaFailure,
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
    let deadline = deadline_of(&event, services.config.redis.timeout + DEADLINE_MARGIN);
    let length = services.config.policy.code_length;
    let input = parse::<VerifyBody>(
        &event,
        "Request body must be a JSON object with string fields \"phoneNumber\" and \"otp\".",
    )
    .and_then(|body| {
        let phone = PhoneNumber::parse(&body.phone_number)?;
        let code = OtpCode::parse(&body.otp, length)?;
        let captcha = captcha_token(body.captcha_token.as_ref())?;
        Ok((phone, code, captcha))
    });
    let (phone, code, captcha) = match input {
        Ok(input) => input,
        Err(err) => return fail(&err, None),
    };
    let client = client_ip(&event);
    let guess = Guess {
        phone: &phone,
        code: &code,
        client: &client,
        captcha: captcha.as_ref(),
        deadline,
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
        Err(err) => fail(&err, Some(&phone)),
    }
}
