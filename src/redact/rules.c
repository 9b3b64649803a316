/* SPDX-License-Identifier: Apache-2.0 */
/* The redaction rules: cloud and SaaS credential formats, private key
 * blocks, JWTs, passwords in connection strings and URLs, Authorization
 * headers, and entropy-gated generic assignments, most specific first.
 *
 * Writing a rule (see rules.h for the fields):
 * - No nested unbounded quantifiers, and no two adjacent quantifiers over
 *   overlapping classes: every repetition is bounded ({m,n}) and, where a
 *   run cannot give characters back, possessive ({m,n}+). The engine sets a
 *   match limit, but a rule that reaches it makes redaction fail.
 * - Every alternative starts at one of the rule's keywords, or at most
 *   `back` bytes before it. The text is bytes, not UTF-8 (no PCRE2_UTF).
 * - Give the rule at least three positive and two negative cases in
 *   fixtures/redact/cases.json; tests/unit/test-redact.c refuses a rule
 *   without them. The secrets there are made up, in the real formats. */
#include "redact/rules.h"

/* The end of a key and an assignment operator: an optional closing quote
 * (also JSON-escaped, \"), blanks, then =, :, => or := (never ==, ::, or
 * the :// of a URL), then blanks. Never crosses a line. */
#define ASSIGN "(?:\\\\?[\"'])?[ \t]*(?:=>|:=|=(?!=)|:(?![:/]))[ \t]*"
/* An optional opening quote of a value. */
#define OPENQ "(?:\\\\?[\"'`])?"
/* The rest of an identifier after a keyword: _ACCESS_KEY, Secret, .key. */
#define TAIL "[\\w.-]{0,30}?"
/* Between a service's name and the key: the rest of the identifier
 * (TWILIO_AUTH_TOKEN), or a YAML parent key (twilio:\n  auth_token:). */
#define SERVICE_TO_KEY "(?:[\\w.-]{0,20}?|:[ \t]*\r?\n[ \t]{1,16}+[\\w.-]{0,20}?)"
/* Not inside a longer run of token characters. */
#define NOT_AFTER_TOKEN "(?<![A-Za-z0-9_-])"
#define NOT_BEFORE_TOKEN "(?![A-Za-z0-9_-])"
#define NOT_AFTER_ALNUM "(?<![A-Za-z0-9])"
#define NOT_BEFORE_ALNUM "(?![A-Za-z0-9])"

/* Generic assignments: the rest of the key (capture group 1; the engine
 * refuses keys about a secret rather than holding one: token_type,
 * password_file, secret_name, api_key_header, secret_ref) ... */
#define KEY_TAIL "([\\w.-]{0,30}?)"
/* ... that is not a host or path in a URL (https://token.internal:8080) ... */
#define NOT_IN_URL "(?<![/@])"
/* ... and its value: quoted (also JSON-escaped), single-quoted, backquoted
 * or bare (not a function call), up to 256 bytes. Capture group 2 in
 * every case. */
#define VALUE                                                                 \
    "(?|\\\\?\"([^\"\\s\\\\]{6,256}+)\\\\?\""                                 \
    "|'([^'\\s\\\\]{6,256}+)'"                                                \
    "|`([^`\\s\\\\]{6,256}+)`"                                                \
    "|([^\\s\"'`,;(){}\\[\\]<>\\\\|&]{6,256}+)(?!\\())"

/* A private key block's header, and the end of a line (real, or escaped
 * as in JSON and .env files). */
#define PEM_LABEL "[ A-Z0-9]{0,40}?PRIVATE KEY(?: BLOCK)?-----"
#define PEM_SPACE "(?:\\s|\\\\[rn])"

const cx_redact_rule cx_redact_rules[] = {
    /* Key material: a whole block, so that nothing inside it is matched
     * piecemeal by a later rule. Header lines (Proc-Type, DEK-Info, PGP's
     * Version/Comment), then base64 runs separated by blanks or newlines
     * up to the END line. A block cut short (no END line) is redacted as
     * far as its base64 lines go: runs of 16 or more, or padded ones, so
     * that prose after it is not swallowed; a header alone (a string in a
     * parser's code) is not a key. Linear: every loop is possessive. */
    {
        .id = "private-key",
        .description = "PEM or OpenSSH private key block (RSA, EC, DSA, OPENSSH, PKCS#8, "
                       "encrypted, PGP), from BEGIN to END",
        .pattern = "-----BEGIN" PEM_LABEL
                   "(?:" PEM_SPACE "{1,4}+[A-Za-z][\\w-]{0,40}+:[^\\r\\n\\\\]{0,256}+)*+"
                   "(?:(?:" PEM_SPACE "{1,8}+[A-Za-z0-9+/=]{1,128}+)*+" PEM_SPACE "{0,8}+-----END" PEM_LABEL
                   "|(?:" PEM_SPACE "{1,8}+(?:[A-Za-z0-9+/]{16,128}+={0,2}|[A-Za-z0-9+/]{0,15}+={1,2}))++)",
        .keywords = "=-----BEGIN",
    },
    /* The body of a private key pasted without its armour lines: base64
     * lines that start like DER of a private key (30 82 .. 02 01 00 is
     * "MII..AIBA") or OpenSSH's key format ("b3BlbnNzaC1rZXktdjE" is
     * "openssh-key-v1"). The pattern only finds the run of lines; the
     * engine decodes its start and keeps it only for key material (so a
     * certificate's body, a hash or other base64 is left alone). */
    {
        .id = "private-key-body",
        .description = "Base64 body of a private key without its BEGIN/END lines (PKCS#1, SEC1, "
                       "PKCS#8, encrypted PKCS#8, OpenSSH)",
        .pattern = "(?<![A-Za-z0-9+/])(?:M[A-Z]|b3BlbnNzaC1rZXktdjE)[A-Za-z0-9+/]{38,8192}+={0,2}"
                   "(?:[ \t]{0,8}+(?:\r?\n|\\r?\\n)[ \t]{0,16}+[A-Za-z0-9+/]{2,8192}+={0,2}){0,400}+"
                   "(?![A-Za-z0-9+/=])",
        /* DER of a private key starts 30 82 (MII), 30 81 (MIG, MIH) or,
         * for the short ones, 30 77 02 01 01 04 (SEC1 P-256) or 30 2E/47
         * 02 01 00 30 (Ed25519, X25519, Ed448 PKCS#8). */
        .keywords = "=MII|=MIG|=MIH|=MHcCAQEE|=MC4CAQAw|=MEcCAQAw|=MEYCAQAw|=b3BlbnNzaC1rZXktdjE",
        .flags = CX_REDACT_KEY_BODY,
    },
    {
        .id = "aws-access-key-id",
        .description = "AWS access key id (AKIA, ASIA, ABIA, ACCA, A3T...)",
        .pattern = NOT_AFTER_ALNUM "(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}" NOT_BEFORE_ALNUM,
        .keywords = "=AKIA|=ASIA|=ABIA|=ACCA|=A3T",
    },
    {
        .id = "aws-secret-access-key",
        .description = "AWS secret access key assigned to an aws_secret/secret_access key",
        .pattern = "(?i:aws[\\w.-]{0,24}?secret|secret[_-]?access)" TAIL ASSIGN OPENQ
                   "([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        .keywords = "aws|secret_access|secret-access|secretaccess",
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "github-pat",
        .description = "GitHub personal access token, classic (ghp_)",
        .pattern = "(?<![A-Za-z0-9_])ghp_[A-Za-z0-9]{36,255}+(?![A-Za-z0-9_])",
        .keywords = "=ghp_",
    },
    {
        .id = "github-oauth-token",
        .description = "GitHub OAuth access token (gho_)",
        .pattern = "(?<![A-Za-z0-9_])gho_[A-Za-z0-9]{36,255}+(?![A-Za-z0-9_])",
        .keywords = "=gho_",
    },
    {
        .id = "github-user-token",
        .description = "GitHub App user-to-server token (ghu_)",
        .pattern = "(?<![A-Za-z0-9_])ghu_[A-Za-z0-9]{36,255}+(?![A-Za-z0-9_])",
        .keywords = "=ghu_",
    },
    {
        .id = "github-app-token",
        .description = "GitHub App server-to-server (installation) token (ghs_)",
        .pattern = "(?<![A-Za-z0-9_])ghs_[A-Za-z0-9]{36,255}+(?![A-Za-z0-9_])",
        .keywords = "=ghs_",
    },
    {
        .id = "github-refresh-token",
        .description = "GitHub refresh token (ghr_)",
        .pattern = "(?<![A-Za-z0-9_])ghr_[A-Za-z0-9]{36,255}+(?![A-Za-z0-9_])",
        .keywords = "=ghr_",
    },
    {
        .id = "github-fine-grained-pat",
        .description = "GitHub fine-grained personal access token (github_pat_)",
        .pattern = "(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,255}+",
        .keywords = "=github_pat_",
    },
    {
        .id = "gitlab-pat",
        .description = "GitLab personal, project or group access token (glpat-)",
        .pattern = NOT_AFTER_TOKEN "glpat-[A-Za-z0-9_-]{20,100}+",
        .keywords = "=glpat-",
        .min_entropy = 3.0,
    },
    {
        .id = "gitlab-runner-token",
        .description = "GitLab runner authentication or registration token (glrt-, GR1348941)",
        .pattern = NOT_AFTER_TOKEN "(?:glrt-|GR1348941)[A-Za-z0-9_-]{20,100}+",
        .keywords = "=glrt-|=GR1348941",
        .min_entropy = 3.0,
    },
    {
        .id = "slack-bot-token",
        .description = "Slack bot token (xoxb-)",
        .pattern = NOT_AFTER_TOKEN "xoxb-[0-9]{8,14}-[A-Za-z0-9-]{20,150}+",
        .keywords = "=xoxb-",
    },
    {
        .id = "slack-user-token",
        .description = "Slack user token (xoxp-)",
        .pattern = NOT_AFTER_TOKEN "xoxp-[0-9]{8,14}-[A-Za-z0-9-]{20,150}+",
        .keywords = "=xoxp-",
    },
    {
        .id = "slack-app-token",
        .description = "Slack app-level token (xapp-)",
        .pattern = NOT_AFTER_TOKEN "xapp-[0-9]{1,2}-[A-Za-z0-9-]{20,150}+",
        .keywords = "=xapp-",
    },
    {
        .id = "slack-legacy-token",
        .description = "Slack workspace, refresh or legacy token (xoxa-, xoxr-, xoxs-, xoxe-, xoxo-)",
        .pattern = NOT_AFTER_TOKEN "xox[aorse]-[A-Za-z0-9-]{10,250}+",
        .keywords = "=xoxa-|=xoxr-|=xoxs-|=xoxe-|=xoxo-",
        .min_entropy = 2.5,
    },
    {
        .id = "slack-webhook-url",
        .description = "Slack incoming webhook or workflow trigger URL",
        .pattern = "(?:https?://)?hooks[.]slack[.]com/(?:services|workflows|triggers)/"
                   "[A-Za-z0-9/_+-]{20,200}+",
        .keywords = "hooks.slack.com",
        .back = 8,
    },
    {
        .id = "stripe-secret-key",
        .description = "Stripe secret key (sk_live_, sk_test_)",
        .pattern = "(?<![A-Za-z0-9_])sk_(?:live|test)_[A-Za-z0-9]{20,247}+",
        .keywords = "=sk_live_|=sk_test_",
        .min_entropy = 3.0,
    },
    {
        .id = "stripe-restricted-key",
        .description = "Stripe restricted key (rk_live_, rk_test_)",
        .pattern = "(?<![A-Za-z0-9_])rk_(?:live|test)_[A-Za-z0-9]{20,247}+",
        .keywords = "=rk_live_|=rk_test_",
        .min_entropy = 3.0,
    },
    {
        .id = "stripe-webhook-secret",
        .description = "Stripe webhook signing secret (whsec_)",
        .pattern = "(?<![A-Za-z0-9_])whsec_[A-Za-z0-9+/=]{32,100}+",
        .keywords = "=whsec_",
        .min_entropy = 3.0,
    },
    {
        .id = "google-api-key",
        .description = "Google API key (AIza...)",
        .pattern = NOT_AFTER_TOKEN "AIza[0-9A-Za-z_-]{35}" NOT_BEFORE_TOKEN,
        .keywords = "=AIza",
    },
    {
        .id = "google-oauth-client-secret",
        .description = "Google OAuth client secret (GOCSPX-)",
        .pattern = NOT_AFTER_TOKEN "GOCSPX-[A-Za-z0-9_-]{28}" NOT_BEFORE_TOKEN,
        .keywords = "=GOCSPX-",
    },
    {
        .id = "anthropic-api-key",
        .description = "Anthropic API or admin key (sk-ant-)",
        .pattern = NOT_AFTER_TOKEN "sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{32,200}+",
        .keywords = "=sk-ant-",
    },
    {
        .id = "openai-api-key",
        .description = "OpenAI API key (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-)",
        .pattern = NOT_AFTER_TOKEN "sk-(?!ant-)(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,250}+"
                   "|[A-Za-z0-9]{32,64}+)" NOT_BEFORE_TOKEN,
        .keywords = "=sk-",
        .min_entropy = 3.0,
    },
    {
        .id = "huggingface-token",
        .description = "Hugging Face access token (hf_)",
        .pattern = "(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,40}+(?![A-Za-z0-9_])",
        .keywords = "=hf_",
        .min_entropy = 3.0,
    },
    {
        .id = "npm-token",
        .description = "npm access token (npm_)",
        .pattern = "(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])",
        .keywords = "=npm_",
        .min_entropy = 3.0,
    },
    {
        .id = "pypi-token",
        .description = "PyPI or TestPyPI API token (pypi-AgEIcHlwaS5vcmc...)",
        .pattern = "pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000}+",
        .keywords = "=pypi-AgEIcHlwaS5vcmc|=pypi-AgENdGVzdC5weXBpLm9yZw",
    },
    {
        .id = "sendgrid-api-key",
        .description = "SendGrid API key (SG.<id>.<secret>)",
        .pattern = NOT_AFTER_TOKEN "SG[.][A-Za-z0-9_-]{22}[.][A-Za-z0-9_-]{43}" NOT_BEFORE_TOKEN,
        .keywords = "=SG.",
    },
    {
        .id = "twilio-api-key",
        .description = "Twilio API key SID (SK + 32 hex)",
        .pattern = NOT_AFTER_ALNUM "SK[0-9a-f]{32}" NOT_BEFORE_ALNUM,
        .keywords = "=SK",
        .min_entropy = 3.0,
    },
    {
        .id = "twilio-auth-token",
        .description = "Twilio auth token: assigned to a twilio..token key, or after an "
                       "account SID (AC...:token)",
        .pattern = "(?|(?i:twilio)" SERVICE_TO_KEY "(?i:token|secret)" ASSIGN OPENQ "([0-9a-f]{32})"
                   "|" NOT_AFTER_ALNUM "AC[0-9a-f]{32}:([0-9a-f]{32}))" NOT_BEFORE_ALNUM,
        .keywords = "twilio|=AC",
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "mailgun-api-key",
        .description = "Mailgun API key (key-...)",
        .pattern = NOT_AFTER_TOKEN "key-[0-9a-zA-Z]{32}" NOT_BEFORE_TOKEN,
        .keywords = "=key-",
        .min_entropy = 3.0,
    },
    {
        .id = "mailchimp-api-key",
        .description = "Mailchimp API key (32 hex + -us<n>)",
        .pattern = "(?<![0-9a-f])[0-9a-f]{32}-us[0-9]{1,2}" NOT_BEFORE_ALNUM,
        .keywords = "=-us",
        .back = 32,
        .min_entropy = 3.0,
    },
    {
        .id = "shopify-token",
        .description = "Shopify access token, shared secret, custom or private app token "
                       "(shpat_, shpss_, shpca_, shppa_)",
        .pattern = "shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}" NOT_BEFORE_ALNUM,
        .keywords = "=shpat_|=shpss_|=shpca_|=shppa_",
    },
    {
        .id = "digitalocean-token",
        .description = "DigitalOcean personal access, OAuth or refresh token (dop_v1_, doo_v1_, dor_v1_)",
        .pattern = "do[opr]_v1_[a-f0-9]{64}" NOT_BEFORE_ALNUM,
        .keywords = "=dop_v1_|=doo_v1_|=dor_v1_",
    },
    {
        .id = "heroku-api-key",
        .description = "Heroku API key: a UUID assigned to a heroku..key/token, or HRKU-",
        .pattern = "(?|(?i:heroku)" SERVICE_TO_KEY "(?i:key|token)" ASSIGN OPENQ
                   "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                   NOT_BEFORE_ALNUM
                   "|" NOT_AFTER_TOKEN "(HRKU-[A-Za-z0-9_-]{30,100}+))",
        .keywords = "heroku|=HRKU-",
        .group = 1,
        .min_entropy = 2.5,
    },
    {
        .id = "datadog-api-key",
        .description = "Datadog API or application key assigned to a datadog/dd_ key",
        .pattern = "(?:(?i:datadog)|(?<![A-Za-z])(?i:dd))" SERVICE_TO_KEY "(?i:api|app(?:lication)?)"
                   "[_.-]?(?i:key)" TAIL ASSIGN OPENQ
                   "([0-9a-f]{40}|[0-9a-f]{32})" NOT_BEFORE_ALNUM,
        .keywords = "datadog|dd_api|dd_app|dd-api|dd-app",
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "newrelic-api-key",
        .description = "New Relic user API key (NRAK-)",
        .pattern = NOT_AFTER_TOKEN "NRAK-[A-Z0-9]{27}" NOT_BEFORE_ALNUM,
        .keywords = "=NRAK-",
    },
    {
        .id = "sentry-dsn",
        .description = "Sentry DSN with its key (https://<key>@...sentry.../<project>)",
        .pattern = "(?|https?://([0-9a-f]{32})(?::[0-9a-f]{32})?@[A-Za-z0-9.-]{0,100}?(?i:sentry)"
                   "|(?i:sentry)" SERVICE_TO_KEY "(?i:dsn)" ASSIGN OPENQ
                   "https?://([0-9a-f]{32})(?::[0-9a-f]{32})?@)",
        .keywords = "sentry",
        .back = 160,
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "discord-bot-token",
        .description = "Discord bot token, after `Bot ` or assigned to a discord..token key",
        .pattern = "(?|(?i:discord)" SERVICE_TO_KEY "(?i:token)" ASSIGN OPENQ
                   "([MNO][A-Za-z0-9_-]{23,27}[.][A-Za-z0-9_-]{6,7}[.][A-Za-z0-9_-]{27,40}+)"
                   "|(?i:bot)[ \t]+"
                   "([MNO][A-Za-z0-9_-]{23,27}[.][A-Za-z0-9_-]{6,7}[.][A-Za-z0-9_-]{27,40}+))"
                   NOT_BEFORE_TOKEN,
        .keywords = "discord|bot ",
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "discord-webhook-url",
        .description = "Discord webhook URL with its token",
        .pattern = "(?:https?://)?(?:(?:ptb|canary)[.])?discord(?:app)?[.]com/api/(?:v[0-9]{1,2}/)?"
                   "webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68}+",
        .keywords = "discord",
        .back = 16,
    },
    {
        .id = "telegram-bot-token",
        .description = "Telegram bot token (<bot id>:AA...)",
        .pattern = "(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}" NOT_BEFORE_TOKEN,
        .keywords = "=:AA",
        .back = 10,
    },
    {
        .id = "square-access-token",
        .description = "Square access token (EAAA..., sq0atp-)",
        .pattern = NOT_AFTER_TOKEN "(?:EAAA[A-Za-z0-9_-]{60}|sq0atp-[A-Za-z0-9_-]{22})" NOT_BEFORE_TOKEN,
        .keywords = "=EAAA|=sq0atp-",
        .min_entropy = 3.0,
    },
    {
        .id = "square-oauth-secret",
        .description = "Square OAuth application secret (sq0csp-)",
        .pattern = NOT_AFTER_TOKEN "sq0csp-[A-Za-z0-9_-]{43}" NOT_BEFORE_TOKEN,
        .keywords = "=sq0csp-",
    },
    {
        .id = "atlassian-api-token",
        .description = "Atlassian (Jira, Confluence, Bitbucket) API token (ATATT3...)",
        .pattern = NOT_AFTER_TOKEN "ATATT3[A-Za-z0-9_=-]{150,300}+",
        .keywords = "=ATATT3",
    },
    {
        .id = "linear-api-key",
        .description = "Linear personal API key (lin_api_)",
        .pattern = "lin_api_[A-Za-z0-9]{40}" NOT_BEFORE_ALNUM,
        .keywords = "=lin_api_",
    },
    {
        .id = "doppler-token",
        .description = "Doppler personal, service, service-account or CLI token (dp.pt., dp.st., ...)",
        .pattern = NOT_AFTER_ALNUM "dp[.](?:pt|st|sa|ct|scim|audit)[.][A-Za-z0-9_-]{40,44}" NOT_BEFORE_TOKEN,
        .keywords = "=dp.pt.|=dp.st.|=dp.sa.|=dp.ct.|=dp.scim.|=dp.audit.",
    },
    {
        .id = "vault-token",
        .description = "HashiCorp Vault service, batch or recovery token (hvs., hvb., hvr.)",
        .pattern = "(?<![A-Za-z0-9_.-])hv[sbr][.][A-Za-z0-9_-]{24,400}+",
        .keywords = "=hvs.|=hvb.|=hvr.",
        .min_entropy = 3.0,
    },
    {
        .id = "terraform-cloud-token",
        .description = "Terraform Cloud / Enterprise API token (<14>.atlasv1.<...>)",
        .pattern = NOT_AFTER_ALNUM "[A-Za-z0-9]{14}[.]atlasv1[.][A-Za-z0-9_=-]{60,100}+",
        .keywords = ".atlasv1.",
        .back = 14,
    },
    {
        .id = "dockerhub-pat",
        .description = "Docker Hub personal or organization access token (dckr_pat_, dckr_oat_)",
        .pattern = "dckr_(?:pat|oat)_[A-Za-z0-9_-]{24,64}+",
        .keywords = "=dckr_pat_|=dckr_oat_",
        .min_entropy = 3.0,
    },
    {
        .id = "azure-storage-key",
        .description = "Azure storage account or Service Bus key in a connection string "
                       "(AccountKey=, SharedAccessKey=)",
        .pattern = "(?i:AccountKey|SharedAccessKey)[ \t]*=[ \t]*([A-Za-z0-9+/]{40,86}+={0,2})",
        .keywords = "accountkey|sharedaccesskey",
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "azure-ad-client-secret",
        .description = "Microsoft Entra ID (Azure AD) client secret (...Q~...), or assigned to an "
                       "azure/aad/arm client secret key",
        .pattern = "(?|(?<![A-Za-z0-9_~.-])([A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})"
                   "(?![A-Za-z0-9_~.-])"
                   "|(?i:azure|aad|arm)[\\w.-]{0,30}?(?i:client)[_.-]?(?i:secret)" ASSIGN OPENQ
                   "([A-Za-z0-9_~.-]{32,48}+))",
        .keywords = "=Q~|azure|aad_|arm_client",
        .back = 4,
        .group = 1,
        .min_entropy = 3.0,
    },
    {
        .id = "age-secret-key",
        .description = "age encryption secret key (AGE-SECRET-KEY-1...)",
        .pattern = "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}" NOT_BEFORE_ALNUM,
        .keywords = "=AGE-SECRET-KEY-1",
    },
    {
        .id = "jwt",
        .description = "JSON Web Token (eyJ<header>.<payload>.<signature>)",
        .pattern = NOT_AFTER_TOKEN "eyJ[A-Za-z0-9_-]{10,4096}+[.]ey[A-Za-z0-9_-]{10,16384}+"
                   "[.][A-Za-z0-9_-]{10,2048}+",
        .keywords = "=eyJ",
    },
    {
        .id = "database-url-password",
        .description = "Password in a database or broker URL (postgres, mysql, mariadb, mongodb, "
                       "redis, amqp, mssql)",
        .pattern = "(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:[+]srv)?|rediss?|amqps?|mssql|sqlserver)"
                   "://[^\\s:/@?#\"'<>]{0,128}+:([^\\s/?\"'<>]{1,256})@",
        .keywords = "postgres|mysql|mariadb|mongodb|redis|amqp|mssql|sqlserver",
        .group = 1,
    },
    {
        .id = "url-basic-auth",
        .description = "Password in the user-info of any URL (scheme://user:password@host)",
        .pattern = "(?<=[A-Za-z0-9])://[^\\s:/@?#\"'<>]{1,128}+:"
                   "([^\\s/?\"'<>]{1,256})@[A-Za-z0-9\\[]",
        .keywords = "://",
        .group = 1,
    },
    {
        .id = "authorization-bearer",
        .description = "Bearer or token credential in an Authorization header, or after `Bearer `",
        .pattern = "(?|(?i:authorization)" ASSIGN OPENQ "(?i:bearer|token)[ \t]+"
                   "([A-Za-z0-9._~+/-]{8,4096}+=*)"
                   "|(?i:bearer)[ \t]+([A-Za-z0-9._~+/-]{20,4096}+=*))",
        .keywords = "authorization|bearer ",
        .group = 1,
        .min_len = 8,
        .min_entropy = 3.0,
        .flags = CX_REDACT_GENERIC,
    },
    {
        .id = "authorization-basic",
        .description = "Basic credentials (base64 user:password) in an Authorization header",
        .pattern = "(?i:authorization)" ASSIGN OPENQ "(?i:basic)[ \t]+([A-Za-z0-9+/]{8,4096}+={0,2})",
        .keywords = "authorization",
        .group = 1,
        .min_entropy = 2.5,
    },
    /* Generic assignments last: any more specific rule wins an overlap. */
    {
        .id = "generic-password",
        .description = "Value assigned to a password, passwd, passphrase or pwd key",
        .pattern = NOT_IN_URL "(?:(?<![A-Za-z])|(?=[A-Z]))(?i:pass(?:word|wd|phrase)|pass(?![a-z])|pwd(?![a-z]))" KEY_TAIL
                   ASSIGN VALUE,
        .keywords = "pass|pwd",
        .group = 2,
        .key_group = 1,
        .min_len = 8,
        .min_entropy = 2.5,
        .flags = CX_REDACT_GENERIC,
    },
    {
        .id = "generic-secret",
        .description = "Value assigned to a secret or client_secret key",
        .pattern = NOT_IN_URL "(?i:secret)" KEY_TAIL ASSIGN VALUE,
        .keywords = "secret",
        .group = 2,
        .key_group = 1,
        .min_len = 10,
        .min_entropy = 3.0,
        .flags = CX_REDACT_GENERIC,
    },
    {
        .id = "generic-token",
        .description = "Value assigned to a token key (access_token, auth_token, GITHUB_TOKEN, ...)",
        .pattern = NOT_IN_URL "(?i:token)" KEY_TAIL ASSIGN VALUE,
        .keywords = "token",
        .group = 2,
        .key_group = 1,
        .min_len = 10,
        .min_entropy = 3.0,
        .flags = CX_REDACT_GENERIC,
    },
    {
        .id = "generic-api-key",
        .description = "Value assigned to an api_key, apikey, access_key or private_key key",
        .pattern = NOT_IN_URL "(?i:api[_-]?key|access[_-]?key|private[_-]?key)" KEY_TAIL ASSIGN VALUE,
        .keywords = "api_key|api-key|apikey|access_key|access-key|accesskey|private_key|"
                    "private-key|privatekey",
        .group = 2,
        .key_group = 1,
        .min_len = 10,
        .min_entropy = 3.0,
        .flags = CX_REDACT_GENERIC,
    },
};

const size_t cx_redact_nrules = sizeof cx_redact_rules / sizeof cx_redact_rules[0];
