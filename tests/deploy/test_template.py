"""What the linters cannot see in template.yaml: the routes, least privilege,
the cache's network rule, every setting of the service passed to the
functions that use it with the service's own default, and alarms on the
metrics the functions emit."""

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, ERRORS = decode(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
FUNCTIONS = {"RequestOtpFunction": ("request-otp", [("POST", "/api/otp/request")]),
             "VerifyOtpFunction": ("verify-otp", [("POST", "/api/otp/verify"),
                                                  ("GET", "/.well-known/jwks.json")]),
             "PlivoWebhookFunction": ("plivo-webhook", [("POST", "/api/otp/voice/answer"),
                                                        ("POST", "/api/otp/voice/hangup"),
                                                        ("POST", "/api/otp/status")])}
# The functions that place calls (request-otp, and plivo-webhook for
# VOICE_FALLBACK=auto) and build Plivo's callback URLs: they alone get the
# voice settings, on top of the shared ones in Globals.
VOICE_FUNCTIONS = ["RequestOtpFunction", "PlivoWebhookFunction"]
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
    "OTP_MAX_FAILURES_PER_DAY": "20",
    "ALLOWED_NUMBER_TYPES": "mobile,fixed_line_or_mobile", "TRUSTED_PHONE_NUMBERS": "",
    # Blank: ten times the per-IP limit.
    "IPV6_48_MAX_SENDS_PER_HOUR": "", "IPV6_48_MAX_VERIFIES_PER_HOUR": "",
    "TOKEN_AUDIENCE": "", "TOKEN_ALGORITHM": "",
    "SECRET_REFRESH_SECONDS": "300", "OTP_MESSAGE_TEMPLATES": "",
}
# Where the template's default differs from the service's, on purpose: a
# deployed stack says "Your phone verification code is ..." until OtpBrand
# names the product, rather than the service's bare "app".
TEMPLATE_DEFAULTS = {"OTP_BRAND": "phone"}
# Settings of issue 10 (tokens, rotation, languages): each says what it does.
TOKEN_AND_LOCALE_PARAMETERS = ["TokenAudience", "TokenAlgorithm", "SecretRefreshSeconds", "OtpMessageTemplates"]
# The adaptive defences (shared/src/config/fraud.rs). Blank means unset to
# the service: no CAPTCHA provider (off), the provider's own siteverify URL,
# no blocked line type (lookups off).
FRAUD_DEFAULTS = {
    "CAPTCHA_PROVIDER": "", "CAPTCHA_SITE_KEY": "", "CAPTCHA_VERIFY_URL": "",
    "CAPTCHA_MIN_SCORE": "0.5", "CAPTCHA_TIMEOUT_MS": "2000", "CAPTCHA_ON_REQUEST": "elevated",
    "CAPTCHA_AFTER_FAILED_ATTEMPTS": "2",
    "PUMPING_BREAKER": "on", "PUMPING_PREFIX_DIGITS": "6", "PUMPING_WINDOW_SECONDS": "3600",
    "PUMPING_MIN_SENDS": "20", "PUMPING_MIN_CONVERSION": "0.2", "PUMPING_BLOCK_SECONDS": "3600",
    "LOOKUP_BLOCKED_LINE_TYPES": "", "PLIVO_LOOKUP_URL": "https://lookup.plivo.com",
    "LOOKUP_CACHE_SECONDS": "2592000", "LOOKUP_TIMEOUT_MS": "2000",
}
SERVICE_DEFAULTS.update(FRAUD_DEFAULTS)
# The voice channel's settings, with the service's defaults. Blank means unset
# to the service: VOICE_ALLOWED_COUNTRIES then follows ALLOWED_COUNTRIES,
# PLIVO_VOICE_SENDER follows PLIVO_SENDER, and PUBLIC_BASE_URL is derived from
# each event.
VOICE_DEFAULTS = {
    "OTP_CHANNELS": "sms,voice", "VOICE_ALLOWED_COUNTRIES": "",
    "VOICE_MESSAGE_TEMPLATE": "Your {brand} verification code is {code}. Once again, your code is {code}.",
    "VOICE_LANGUAGE": "en-US", "VOICE_FALLBACK": "off", "PLIVO_VOICE_SENDER": "", "PUBLIC_BASE_URL": "",
    "VOICE_ALLOWED_NUMBER_TYPES": "mobile,fixed_line_or_mobile,fixed_line",
}
# Parameters the deployer must give: the service has no default.
REQUIRED = {"PLIVO_SENDER"}
# Set by the stack itself rather than by a parameter.
WIRED = {"OTP_SECRET_ID", "REDIS_URL", "REDIS_CLUSTER"}
# Meaningful only outside AWS (a private CA for tests).
# Local development only: test numbers belong in the secret (`test_numbers`),
# where reading the function's configuration does not show them.
LOCAL_ONLY = {"REDIS_TLS_CA_FILE", "TEST_PHONE_NUMBERS"}


NAMESPACE = re.search(r'NAMESPACE: &str = "(\w+)"', (ROOT / "shared/src/metrics.rs").read_text()).group(1)
API_TYPES = {"AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api",
             "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping"}


def config_variables():
    """The variables config.rs reads (or config/*.rs, should it become a folder)."""
    sources = [ROOT / "shared/src/config.rs", *sorted((ROOT / "shared/src/config").glob("**/*.rs"))]
    names = set()
    for path in sources:
        if not path.is_file() or path.name == "tests.rs":
            continue
        source = path.read_text()
        if "#[cfg(test)]" in source:
            source = source[: source.index("#[cfg(test)]")]
        names |= set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source))
    return names - {"CARGO_PKG_VERSION"}


def environment(name):
    """What the function runs with: Globals merged with its own variables (as SAM does)."""
    own = RESOURCES[name]["Properties"].get("Environment", {}).get("Variables", {})
    return {**GLOBAL_ENV, **own}


def referenced_resources(node):
    """Logical ids a template fragment refers to, through Ref, GetAtt or Sub."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    found |= referenced_resources(value[1])
            else:
                found |= referenced_resources(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_resources(item)
    return found


def test_the_template_parses_cleanly():
    assert not ERRORS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_is_a_rust_arm64_lambda_built_by_cargo_lambda(name):
    function = RESOURCES[name]
    binary, _ = FUNCTIONS[name]
    assert function["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}}
    # Built from the workspace root, so all binaries share one target directory.
    assert function["Properties"]["CodeUri"] == "."
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Handler"] == "bootstrap"
    assert globals_["Architectures"] == [{"Ref": "Architecture"}]
    assert PARAMETERS["Architecture"]["Default"] == "arm64"
    assert globals_["MemorySize"] == 128
    assert globals_["LoggingConfig"] == {"LogFormat": "JSON"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_serves_exactly_its_routes_on_the_http_api(name):
    _, routes = FUNCTIONS[name]
    events = RESOURCES[name]["Properties"]["Events"]
    assert [e["Properties"] for e in events.values()] == [
        {"ApiId": {"Ref": "Api"}, "Method": method, "Path": route} for method, route in routes]
    assert all(e["Type"] == "HttpApi" for e in events.values())


def test_the_api_serves_the_client_routes_the_jwk_set_and_plivos_three_callbacks_only():
    functions = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == set(FUNCTIONS)
    routes = [(e["Properties"]["Method"], e["Properties"]["Path"])
              for f in functions.values() for e in f["Properties"]["Events"].values()]
    assert sorted(routes) == sorted([
        ("POST", "/api/otp/request"), ("POST", "/api/otp/verify"), ("GET", "/.well-known/jwks.json"),
        ("POST", "/api/otp/voice/answer"), ("POST", "/api/otp/voice/hangup"), ("POST", "/api/otp/status")])


def test_the_jwk_set_is_served_by_verify_otp_in_the_api_and_locally():
    # cargo lambda watch routes by Cargo.toml's router table, as the API does.
    router = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["router"]
    for name, (binary, routes) in FUNCTIONS.items():
        for _, path in routes:
            assert router[path] == binary, path


def test_a_new_stacks_secret_makes_es256_tokens_without_a_manual_step():
    generate = RESOURCES["OtpSecret"]["Properties"]["GenerateSecretString"]
    template = json.loads(generate["SecretStringTemplate"])
    # CloudFormation generates one random string; the functions derive the
    # ES256 key from it, and the code keys too, each under its own label.
    assert generate["GenerateStringKey"] == "signing_key"
    assert template["derived_token_key"] == "first"
    assert "signing_key" not in template and "token_keys" not in template
    assert generate["PasswordLength"] >= 32
    assert PARAMETERS["TokenAlgorithm"]["Default"] == ""


@pytest.mark.parametrize("parameter", TOKEN_AND_LOCALE_PARAMETERS)
def test_each_token_and_language_parameter_says_what_it_is_for(parameter):
    assert PARAMETERS[parameter].get("Description"), parameter


def test_the_token_algorithm_and_refresh_period_are_bounded_as_the_service_bounds_them():
    assert PARAMETERS["TokenAlgorithm"]["AllowedValues"] == ["", "ES256", "HS256"]
    refresh = PARAMETERS["SecretRefreshSeconds"]
    assert (refresh["MinValue"], refresh["MaxValue"]) == (1, 3600)


def test_browsers_may_fetch_the_jwk_set_across_origins():
    cors = RESOURCES["Api"]["Properties"]["CorsConfiguration"]
    cors = cors["Fn::If"][1] if "Fn::If" in cors else cors
    assert "GET" in cors["AllowMethods"]


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


def test_the_cache_opens_no_connection_and_the_functions_reach_only_the_cache_on_its_ports():
    [rule] = RESOURCES["CacheSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (rule["IpProtocol"], rule["CidrIp"]) == ("-1", "127.0.0.1/32"), "the default allow-all is replaced"
    for name, resource in RESOURCES.items():
        rules = []
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            rules = [(name, r) for r in resource["Properties"].get("SecurityGroupEgress", [])]
        elif resource["Type"] == "AWS::EC2::SecurityGroupEgress":
            rules = [(resource["Properties"]["GroupId"]["Ref"], resource["Properties"])]
        for group, rule in rules:
            if rule.get("FromPort") in (6379, 6380):
                assert group == "FunctionSecurityGroup", name
                assert rule["DestinationSecurityGroupId"] == {"Ref": "CacheSecurityGroup"}, name
                assert "CidrIp" not in rule and "CidrIpv6" not in rule, name
            elif group == "FunctionSecurityGroup":
                assert (rule["FromPort"], rule["ToPort"]) == (443, 443), "HTTPS to Plivo and Secrets Manager only"


def test_the_functions_speak_redis_cluster_over_tls_to_the_cache():
    assert GLOBAL_ENV["REDIS_CLUSTER"] == "true"
    assert GLOBAL_ENV["REDIS_URL"] == {"Fn::Sub": "rediss://${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"}


def test_every_setting_of_the_service_reaches_the_functions_that_use_it():
    expected = config_variables() - LOCAL_ONLY
    assert expected == set(SERVICE_DEFAULTS) | set(VOICE_DEFAULTS) | WIRED | REQUIRED, \
        "update SERVICE_DEFAULTS / VOICE_DEFAULTS with config.rs"
    # The shared settings live in Globals, so every function gets them.
    assert set(GLOBAL_ENV) == expected - set(VOICE_DEFAULTS)
    # The voice settings go to the functions that call, and only to them.
    for name in VOICE_FUNCTIONS:
        assert set(RESOURCES[name]["Properties"]["Environment"]["Variables"]) == set(VOICE_DEFAULTS)
    for name in set(FUNCTIONS) - set(VOICE_FUNCTIONS):
        assert "Environment" not in RESOURCES[name]["Properties"], "settings live in Globals"


def test_plivo_webhook_runs_with_the_same_settings_as_request_otp():
    assert environment("PlivoWebhookFunction") == environment("RequestOtpFunction")


@pytest.mark.parametrize("function,variable,default", [
    *(("Globals", variable, default) for variable, default in sorted(SERVICE_DEFAULTS.items())),
    *((name, variable, default) for name in VOICE_FUNCTIONS for variable, default in sorted(VOICE_DEFAULTS.items())),
])
def test_each_setting_is_a_parameter_with_the_services_default(function, variable, default):
    ref = GLOBAL_ENV[variable] if function == "Globals" else environment(function)[variable]
    assert set(ref) == {"Ref"}, f"{variable} is not taken from a parameter"
    parameter = PARAMETERS[ref["Ref"]]
    assert str(parameter.get("Default", "")) == TEMPLATE_DEFAULTS.get(variable, default), variable


def test_every_parameter_says_what_it_is_for():
    # `sam deploy --guided` shows nothing else; the console shows it too.
    assert [name for name, parameter in PARAMETERS.items() if not parameter.get("Description")] == []


def test_the_parameters_every_deployment_sets_come_first():
    # `sam deploy --guided` asks in the template's order.
    first = ["VpcId", "SubnetIds", "PlivoSender", "OtpBrand", "AllowedOrigins"]
    assert list(PARAMETERS)[: len(first)] == first
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert groups[0]["Parameters"] == first
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(PARAMETERS), "every parameter in exactly one console group"


def test_no_parameter_hides_its_input():
    # A NoEcho parameter has no default in `sam deploy --guided`, which then
    # refuses an empty answer: a prompt a new user cannot get past.
    assert [name for name, parameter in PARAMETERS.items() if parameter.get("NoEcho")] == []


def test_samconfig_names_a_region_and_builds_rust_in_source():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["global"]["parameters"]["region"]
    # rust-cargolambda builds only in source; saying so silences sam build's warning.
    assert config["default"]["build"]["parameters"]["build_in_source"] is True


def test_every_voice_and_alarm_parameter_says_what_it_is_for():
    new = {ref["Ref"] for name in VOICE_FUNCTIONS
           for ref in RESOURCES[name]["Properties"]["Environment"]["Variables"].values()}
    new |= {"UndeliveredRateThreshold", "UndeliveredMinReceipts"}
    for parameter in new:
        assert PARAMETERS[parameter].get("Description"), parameter


def test_every_fraud_and_hardening_parameter_says_what_it_is_for():
    names = set(FRAUD_DEFAULTS) | {"OTP_MAX_FAILURES_PER_DAY", "ALLOWED_NUMBER_TYPES",
                                   "TRUSTED_PHONE_NUMBERS", "IPV6_48_MAX_SENDS_PER_HOUR",
                                   "IPV6_48_MAX_VERIFIES_PER_HOUR"}
    for variable in names:
        parameter = GLOBAL_ENV[variable]["Ref"]
        assert PARAMETERS[parameter].get("Description"), parameter
    assert PARAMETERS["PumpingBreakerAlarmThreshold"].get("Description")


@pytest.mark.parametrize("parameter,allowed", [
    ("CaptchaProvider", ["", "turnstile", "hcaptcha", "recaptcha"]),
    ("CaptchaOnRequest", ["always", "elevated", "never"]),
    ("PumpingBreaker", ["on", "off"]),
])
def test_the_fraud_switches_take_only_what_the_service_takes(parameter, allowed):
    assert PARAMETERS[parameter]["AllowedValues"] == allowed


@pytest.mark.parametrize("types,allowed", [
    ("", True), ("voip", True), ("voip,toll-free", True), ("fixed, unknown", True),
    ("mobile", False), ("voip,", False), ("landline", False),
])
def test_the_blocked_line_types_are_those_the_service_knows(types, allowed):
    assert bool(re.fullmatch(PARAMETERS["LookupBlockedLineTypes"]["AllowedPattern"], types)) is allowed


def test_a_pumping_breaker_trip_raises_the_alarm():
    alarm = RESOURCES["PumpingBreakerAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, "PumpingBreakerTripped")
    assert "Dimensions" not in alarm, "the total, not one country"
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert alarm["Threshold"] == {"Ref": "PumpingBreakerAlarmThreshold"}
    assert PARAMETERS["PumpingBreakerAlarmThreshold"]["Default"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}],
                                                {"Ref": "AWS::NoValue"}]}


def test_no_function_is_handed_the_apis_own_url():
    # The API refers to the functions; a function referring back to the API
    # (its id, its URL, a stage) would be a circular dependency. The functions
    # derive the base URL from each event, or take PUBLIC_BASE_URL.
    for name in FUNCTIONS:
        env = environment(name)
        for ref in referenced_resources(env):
            assert RESOURCES.get(ref, {}).get("Type") not in API_TYPES, (name, ref)
        assert "execute-api" not in json.dumps(env), name
        assert "DependsOn" not in RESOURCES[name]
    assert PARAMETERS["PublicBaseUrl"]["Default"] == ""


@pytest.mark.parametrize("url,allowed", [
    ("", True), ("https://otp.example.com", True), ("https://api.example.com/otp", True),
    ("https://otp.example.com/", False), ("http://otp.example.com", False),
    ("https://otp.example.com/x?y=1", False), ("otp.example.com", False),
])
def test_the_public_base_url_is_empty_or_https_without_a_trailing_slash(url, allowed):
    assert bool(re.fullmatch(PARAMETERS["PublicBaseUrl"]["AllowedPattern"], url)) is allowed


@pytest.mark.parametrize("channels,allowed", [
    ("sms,voice", True), ("sms", True), ("voice", True), ("voice, sms", True),
    ("", False), ("sms,", False), ("sms,fax", False),
])
def test_the_channels_on_offer_are_sms_and_voice(channels, allowed):
    assert bool(re.fullmatch(PARAMETERS["OtpChannels"]["AllowedPattern"], channels)) is allowed


def test_the_voice_fallback_is_off_unless_asked_for():
    parameter = PARAMETERS["VoiceFallback"]
    assert parameter["Default"] == "off"
    assert parameter["AllowedValues"] == ["off", "auto"]


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_required_settings_are_parameters_without_a_default(variable):
    parameter = PARAMETERS[GLOBAL_ENV[variable]["Ref"]]
    assert "Default" not in parameter


def cors_configuration():
    """The API's CORS configuration when AllowedOrigins names origins."""
    condition, configured, otherwise = RESOURCES["Api"]["Properties"]["CorsConfiguration"]["Fn::If"]
    assert condition == "HasAllowedOrigins"
    assert otherwise == {"Ref": "AWS::NoValue"}
    return configured


def test_the_api_throttles_logs_and_allows_configured_origins():
    api = RESOURCES["Api"]["Properties"]
    assert api["DefaultRouteSettings"] == {"ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
                                           "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"}}
    cors = cors_configuration()
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(cors["ExposeHeaders"]) == {"retry-after", "idempotent-replayed"}
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}


def test_no_browser_origin_is_allowed_unless_named():
    # Any origin ("*") would let every web page spend its visitors' per-IP
    # budgets; without AllowedOrigins there is no CORS configuration at all.
    assert PARAMETERS["AllowedOrigins"]["Type"] == "CommaDelimitedList"
    assert PARAMETERS["AllowedOrigins"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAllowedOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}, ""]}]}


def test_browsers_may_send_the_json_posts_and_fetch_the_key_set():
    cors = cors_configuration()
    assert cors["AllowMethods"] == ["GET", "POST"]
    assert cors["AllowHeaders"] == ["content-type", "idempotency-key"]
    assert "AllowCredentials" not in cors, "the API takes no cookies"


def dev_server():
    spec = importlib.util.spec_from_file_location("dev_server", ROOT / "scripts/dev_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_local_dev_server_routes_what_api_gateway_routes():
    routes = {(e["Properties"]["Method"].upper(), e["Properties"]["Path"])
              for resource in RESOURCES.values() if resource["Type"] == "AWS::Serverless::Function"
              for e in resource["Properties"].get("Events", {}).values() if e["Type"] == "HttpApi"}
    assert dev_server().template_routes(ROOT / "template.yaml") == routes


def test_the_local_dev_server_answers_cors_as_the_template_configures_it():
    server = dev_server()
    cors = cors_configuration()
    assert server.CORS_ALLOW_METHODS == cors["AllowMethods"]
    assert server.CORS_ALLOW_HEADERS == cors["AllowHeaders"]
    assert server.CORS_EXPOSE_HEADERS == cors["ExposeHeaders"]
    assert server.CORS_MAX_AGE == cors["MaxAge"]


def test_every_log_group_has_a_retention():
    groups = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert {"ApiAccessLogs", "RequestOtpLogs", "VerifyOtpLogs", "PlivoWebhookLogs"} <= set(groups)
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_has_its_own_log_group(name):
    names = [g["Properties"].get("LogGroupName") for g in RESOURCES.values() if g["Type"] == "AWS::Logs::LogGroup"]
    assert names.count({"Fn::Sub": f"/aws/lambda/${{{name}}}"}) == 1


def test_alarms_watch_sms_failures_and_pumping_and_outputs_are_there():
    assert RESOURCES["SmsFailureAlarm"]["Properties"]["MetricName"] == "SmsFailed"
    expression = RESOURCES["SmsPumpingAlarm"]["Properties"]["Metrics"][2]["Expression"]["Fn::Sub"]
    assert "sent" in expression and "verified" in expression
    assert set(TEMPLATE["Outputs"]) == {"ApiUrl", "SecretArn", "DashboardUrl"}


def test_any_forged_plivo_callback_in_five_minutes_raises_the_alarm():
    alarm = RESOURCES["WebhookSignatureAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, "WebhookSignatureRejected")
    assert "Dimensions" not in alarm, "the total, not one country"
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"


def undelivered_rate_alarm_fires(delivered, undelivered):
    """Evaluates the alarm's metric math over one period's sums, with the defaults."""
    alarm = RESOURCES["SmsUndeliveredAlarm"]["Properties"]
    [expression] = [m["Expression"]["Fn::Sub"] for m in alarm["Metrics"] if m.get("ReturnData")]
    expression = expression.replace("${UndeliveredMinReceipts}", str(PARAMETERS["UndeliveredMinReceipts"]["Default"]))
    assert "${" not in expression
    python = expression.replace(" AND ", " and ").replace(" OR ", " or ")
    value = eval(python, {"__builtins__": {}}, {  # noqa: S307 (our own template)
        "IF": lambda condition, then, otherwise: then if condition else otherwise,
        "FILL": lambda metric, default: default if metric is None else metric,
        "delivered": delivered, "undelivered": undelivered})
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == {"Ref": "UndeliveredRateThreshold"}
    return value > float(PARAMETERS["UndeliveredRateThreshold"]["Default"])


def test_the_undelivered_rate_alarm_divides_undelivered_by_all_receipts():
    alarm = RESOURCES["SmsUndeliveredAlarm"]["Properties"]
    metrics = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert metrics == {"delivered": {"Namespace": NAMESPACE, "MetricName": "SmsDelivered"},
                       "undelivered": {"Namespace": NAMESPACE, "MetricName": "SmsUndelivered"}}
    assert float(PARAMETERS["UndeliveredRateThreshold"]["Default"]) == 0.2
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("delivered,undelivered,fires", [
    (0, 1, False),     # 1 of 1: too few receipts to page anyone
    (0, 19, False),    # still under the minimum volume
    (15, 5, True),     # 25 % of 20
    (16, 4, False),    # 20 %: at the threshold, not above
    (99, 1, False),
    (None, 30, True),  # no delivered receipt at all in the period
    (30, None, False),
])
def test_the_undelivered_rate_alarm_needs_volume_and_a_high_share(delivered, undelivered, fires):
    assert undelivered_rate_alarm_fires(delivered, undelivered) is fires


def emitted_metrics():
    """Metric names in metrics.rs: each `Metric` variant's own name, and the
    `DependencyFailed` document's (its dimension values are not metrics)."""
    source = (ROOT / "shared/src/metrics.rs").read_text()
    names = {a for a, b in re.findall(r'Self::(\w+) => "(\w+)"', source) if a == b}
    return names | set(re.findall(r'"Name": "(\w+)"', source))


def dependency_alarm_fires(alarm, per_minute):
    """Whether the alarm fires over three one-minute sums, with the defaults."""
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 60)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == {"Ref": "DependencyFailureAlarmThreshold"}
    threshold = PARAMETERS["DependencyFailureAlarmThreshold"]["Default"]
    breaching = [n >= threshold for n in per_minute[-alarm["EvaluationPeriods"]:]]
    return sum(breaching) >= alarm["DatapointsToAlarm"]


@pytest.mark.parametrize("name,dependency", [("RedisDependencyAlarm", "redis"), ("PlivoDependencyAlarm", "plivo"),
                                             ("SecretsDependencyAlarm", "secrets"), ("DependencyFailedAlarm", None)])
def test_a_failing_dependency_pages_per_dependency_and_in_total(name, dependency):
    alarm = RESOURCES[name]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, "DependencyFailed")
    expected = [{"Name": "Dependency", "Value": dependency}] if dependency else None
    assert alarm.get("Dimensions") == expected
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    # An outage of two minutes pages; one bad minute (a failover's burst of
    # 503s) does not.
    assert dependency_alarm_fires(alarm, [0, 40, 40])
    assert dependency_alarm_fires(alarm, [5, 0, 5])
    assert not dependency_alarm_fires(alarm, [0, 300, 0])
    assert not dependency_alarm_fires(alarm, [4, 4, 4])


def api_5xx_alarm_fires(errors, requests):
    """Evaluates the 5xx alarm's metric math over one period's sums, with the defaults."""
    alarm = RESOURCES["Api5xxAlarm"]["Properties"]
    [expression] = [m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData")]
    value = eval(expression.replace(" AND ", " and "), {"__builtins__": {}}, {  # noqa: S307 (our own template)
        "IF": lambda condition, then, otherwise: then if condition else otherwise,
        "FILL": lambda metric, default: default if metric is None else metric,
        "errors": errors, "requests": requests})
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", {"Ref": "Api5xxRateThreshold"})
    return value > float(PARAMETERS["Api5xxRateThreshold"]["Default"])


def test_the_5xx_alarm_watches_the_http_apis_own_metrics():
    alarm = RESOURCES["Api5xxAlarm"]["Properties"]
    metrics = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    for metric, name in [(metrics["errors"], "5xx"), (metrics["requests"], "Count")]:
        assert metric == {"Namespace": "AWS/ApiGateway", "MetricName": name,
                          "Dimensions": [{"Name": "ApiId", "Value": {"Ref": "Api"}}]}
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("errors,requests,fires", [
    (1, 1, False),      # too few responses to page anyone
    (19, 19, False),
    (2, 20, True),      # 10 %
    (1, 20, False),     # 5 %: at the threshold, not above
    (None, 500, False),
    (500, 500, True),   # Redis down: every call answers 503
])
def test_the_5xx_alarm_needs_volume_and_a_high_share(errors, requests, fires):
    assert api_5xx_alarm_fires(errors, requests) is fires


def test_alarms_watch_metrics_the_functions_emit():
    emitted = emitted_metrics()
    watched = set()
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        if "MetricName" in alarm:
            assert alarm["Namespace"] == NAMESPACE
            watched.add(alarm["MetricName"])
        for metric in alarm.get("Metrics", []):
            # The API's 5xx are API Gateway's own metrics.
            if "MetricStat" in metric and metric["MetricStat"]["Metric"]["Namespace"] != "AWS/ApiGateway":
                assert metric["MetricStat"]["Metric"]["Namespace"] == NAMESPACE
                watched.add(metric["MetricStat"]["Metric"]["MetricName"])
    assert {"SmsFailed", "OtpSent", "OtpVerified", "WebhookSignatureRejected", "SmsDelivered",
            "SmsUndelivered", "PumpingBreakerTripped", "DependencyFailed"} == watched
    assert watched <= emitted, watched - emitted


def test_metric_names_match_what_the_functions_emit():
    emitted = emitted_metrics()
    assert {"OtpSent", "DependencyFailed"} <= emitted
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for metric in emitted:
        assert metric in body, metric


def test_the_dashboard_shows_calls_receipts_the_webhook_function_and_every_alarm():
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Valid JSON once CloudFormation substitutes the ${...} references.
    json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    for metric in ["VoiceCallPlaced", "VoiceCallFailed", "VoiceCallCompleted", "VoiceCallNotAnswered",
                   "SmsDelivered", "SmsUndelivered", "VoiceFallbackPlaced", "WebhookSignatureRejected",
                   "PumpingBreakerTripped", "CaptchaRequired", "CaptchaRejected", "LookupFailed",
                   "DependencyFailed"]:
        assert f'"{metric}"' in body, metric
    for dependency in ["redis", "plivo", "secrets"]:
        assert f'"{dependency}"' in body, dependency
    assert '"AWS/ApiGateway", "Count", "ApiId", "${Api}"' in body
    for name in FUNCTIONS:
        assert "${%s}" % name in body, name
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert "${%s.Arn}" % name in body, name
