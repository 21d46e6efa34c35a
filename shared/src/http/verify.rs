//! `POST /api/otp/verify`: parse, run the verify use case (through
//! idempotency when the client sent a key, so a lost reply can be fetched
//! again with its token), answer.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    DEADLINE_MARGIN, deadline_of,
    errors::fail,
    idempotent::once,
    json_response,
    parse::{client_ip, idempotency_key, parse},
};
use crate::{
    domain::{ClientIp, OtpCode, PhoneNumber},
    metrics::{self, Metric},
    services::Services,
    store::deadline,
    usecase::{
        idempotency::Operation,
        verify::{VerifyError, verify_otp as verify_use_case},
    },
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    phone_number: String,
    otp: String,
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
    deadline::within(hard, async {
        let length = services.config.policy.code_length;
        let input = parse::<VerifyBody>(
            &event,
            "Request body must be a JSON object with string fields \"phoneNumber\" and \"otp\".",
        )
        .and_then(|body| {
            let key = idempotency_key(&event)?;
            let phone = PhoneNumber::parse(&body.phone_number)?;
            let code = OtpCode::parse(&body.otp, length)?;
            Ok((phone, code, key))
        });
        let (phone, code, key) = match input {
            Ok(input) => input,
            Err(err) => return fail(&err, None),
        };
        let client = client_ip(&event);
        match key {
            None => check(services, &phone, &code, &client).await,
            Some(key) => {
                once(
                    services,
                    &key,
                    &phone,
                    Operation::Verify(&code),
                    hard,
                    || check(services, &phone, &code, &client),
                )
                .await
            }
        }
    })
    .await
}

async fn check(
    services: &Services,
    phone: &PhoneNumber,
    code: &OtpCode,
    client: &ClientIp,
) -> Response<Body> {
    let result = verify_use_case(services, phone, code, client).await;
    let outcome_metric = match &result {
        Ok(_) => Some(Metric::OtpVerified),
        Err(VerifyError::InvalidCode { .. }) => Some(Metric::OtpRejected),
        Err(VerifyError::Locked { .. } | VerifyError::TooManyFromIp { .. }) => {
            Some(Metric::RateLimited)
        }
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
