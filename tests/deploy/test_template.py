"""What the linters cannot see in template.yaml: the routes, least privilege,
the cache's network rule, and every setting of the service passed to both
functions with the service's own default."""

import re
from pathlib import Path

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, ERRORS = decode(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
FUNCTIONS = {"RequestOtpFunction": ("request-otp", "/api/otp/request"),
             "VerifyOtpFunction": ("verify-otp", "/api/otp/verify")}
SECRET = {"Fn::If": ["CreateSecret", {"Ref": "OtpSecret"}, {"Ref": "ExistingSecretArn"}]}

# The service's defaults (shared/src/config.rs, README's tables).
SERVICE_DEFAULTS = {
    "OTP_LENGTH": "6", "OTP_TTL_SECONDS": "300", "OTP_MAX_ATTEMPTS": "5",
    "OTP_LOCKOUT_SECONDS": "900", "OTP_RESEND_COOLDOWN_SECONDS": "30",
    "OTP_MAX_SENDS_PER_HOUR": "5", "ALLOWED_COUNTRIES": "", "TOKEN_TTL_SECONDS": "600",
    "TOKEN_ISSUER": "otp-service", "PLIVO_API_URL": "https://api.plivo.com",
    "OTP_MESSAGE_TEMPLATE": "Your {brand} verification code is {code}. It expires in {minutes} minutes.",
    "OTP_BRAND": "app", "WEBOTP_DOMAIN": "", "ANDROID_APP_HASH": "",
    "PLIVO_TIMEOUT_MS": "3000", "PLIVO_MAX_ATTEMPTS": "3", "REDIS_TIMEOUT_MS": "1000",
    "REDIS_KEY_PREFIX": "otp", "IP_MAX_SENDS_PER_HOUR": "20", "IP_MAX_VERIFIES_PER_HOUR": "60",
    "TEST_PHONE_NUMBERS": "",
}
# Parameters the deployer must give: the service has no default.
REQUIRED = {"PLIVO_SENDER"}
# Set by the stack itself rather than by a parameter.
WIRED = {"OTP_SECRET_ID", "REDIS_URL", "REDIS_CLUSTER"}
# Meaningful only outside AWS (a private CA for tests).
LOCAL_ONLY = {"REDIS_TLS_CA_FILE"}


def config_variables():
    source = (ROOT / "shared/src/config.rs").read_text()
    source = source[: source.index("#[cfg(test)]")]
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source)) - {"CARGO_PKG_VERSION"}


def test_the_template_parses_cleanly():
    assert not ERRORS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_is_a_rust_arm64_lambda_built_by_cargo_lambda(name):
    function = RESOURCES[name]
    binary, _ = FUNCTIONS[name]
    assert function["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}}
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Handler"] == "bootstrap"
    assert globals_["Architectures"] == [{"Ref": "Architecture"}]
    assert PARAMETERS["Architecture"]["Default"] == "arm64"
    assert globals_["MemorySize"] == 128
    assert globals_["LoggingConfig"] == {"LogFormat": "JSON"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_serves_exactly_its_post_route_on_the_http_api(name):
    _, route = FUNCTIONS[name]
    events = RESOURCES[name]["Properties"]["Events"]
    assert [e["Properties"] for e in events.values()] == [
        {"ApiId": {"Ref": "Api"}, "Method": "POST", "Path": route}]
    assert all(e["Type"] == "HttpApi" for e in events.values())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_may_only_read_the_one_secret(name):
    policies = RESOURCES[name]["Properties"]["Policies"]
    assert policies == [{"Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET}]}]
    assert GLOBAL_ENV["OTP_SECRET_ID"] == SECRET


def test_no_policy_grants_a_wildcard_resource():
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Resource":
                    assert "*" not in str(value), node
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(RESOURCES)


def test_the_cache_admits_only_the_functions_security_group():
    rules = RESOURCES["CacheSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    assert "CidrIp" not in rule and "CidrIpv6" not in rule
    assert (rule["FromPort"], rule["ToPort"]) == (6379, 6380)
    cache = RESOURCES["Cache"]["Properties"]
    assert cache["Engine"] == "valkey"
    assert cache["SecurityGroupIds"] == [{"Ref": "CacheSecurityGroup"}]


def test_the_functions_speak_redis_cluster_over_tls_to_the_cache():
    assert GLOBAL_ENV["REDIS_CLUSTER"] == "true"
    assert GLOBAL_ENV["REDIS_URL"] == {"Fn::Sub": "rediss://${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"}


def test_every_setting_of_the_service_reaches_both_functions():
    expected = config_variables() - LOCAL_ONLY
    assert expected == set(SERVICE_DEFAULTS) | WIRED | REQUIRED, "update SERVICE_DEFAULTS with config.rs"
    assert set(GLOBAL_ENV) == expected
    for name in FUNCTIONS:
        assert "Environment" not in RESOURCES[name]["Properties"], "settings live in Globals only"


@pytest.mark.parametrize("variable,default", sorted(SERVICE_DEFAULTS.items()))
def test_each_setting_is_a_parameter_with_the_services_default(variable, default):
    ref = GLOBAL_ENV[variable]
    assert set(ref) == {"Ref"}, f"{variable} is not taken from a parameter"
    parameter = PARAMETERS[ref["Ref"]]
    assert str(parameter.get("Default", "")) == default, variable


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_required_settings_are_parameters_without_a_default(variable):
    parameter = PARAMETERS[GLOBAL_ENV[variable]["Ref"]]
    assert "Default" not in parameter


def test_the_api_throttles_logs_and_allows_configured_origins():
    api = RESOURCES["Api"]["Properties"]
    assert api["DefaultRouteSettings"] == {"ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
                                           "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"}}
    assert api["CorsConfiguration"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(api["CorsConfiguration"]["ExposeHeaders"]) == {"retry-after", "idempotent-replayed"}
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}


def test_every_log_group_has_a_retention():
    groups = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert {"ApiAccessLogs", "RequestOtpLogs", "VerifyOtpLogs"} <= set(groups)
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_alarms_watch_sms_failures_and_pumping_and_outputs_are_there():
    assert RESOURCES["SmsFailureAlarm"]["Properties"]["MetricName"] == "SmsFailed"
    expression = RESOURCES["SmsPumpingAlarm"]["Properties"]["Metrics"][2]["Expression"]["Fn::Sub"]
    assert "sent" in expression and "verified" in expression
    assert set(TEMPLATE["Outputs"]) == {"ApiUrl", "SecretArn", "DashboardUrl"}


def test_metric_names_match_what_the_functions_emit():
    source = (ROOT / "shared/src/metrics.rs").read_text()
    emitted = set(re.findall(r'=> "(\w+)"', source))
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for metric in emitted:
        assert metric in body, metric
