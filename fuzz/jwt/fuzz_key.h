/* fuzz/jwt/fuzz_key.h — generated once: the public half of the key that signed the seed
 * tokens in corpus/ (the private half was discarded), and the clock the seeds were minted at. */
#define FUZZ_KID   "jsFca7kl5l2nm6p3qnVYWDTK-9bV1aI9Uh4KTSXRA3c"
#define FUZZ_X     "axDNeAV3Nyxetz9lqtcjH9OfaP2AdpSclt-ty8RSj-4"
#define FUZZ_Y     "Hu56WrMrBnBLfOP6abT4BACqVPnyZkz8MZG7zafyu2A"
#define FUZZ_NOW_S 1800000000LL
#define FUZZ_SEED_TOKEN                                                                            \
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImpzRmNhN2tsNWwybm02cDNxblZZV0RUSy05YlYxYUk5" \
    "VWg0S1RTWFJBM2MifQ."                                                                          \
    "eyJpc3MiOiJodHRwczovL2F1dGgucG9zdGx5LnRlc3QiLCJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJodHRwczovL21jcC5w" \
    "b3N0bHkudGVzdC9tY3AiLCJjbGllbnRfaWQiOiJodHRwczovL2NsaWVudC5leGFtcGxlL2NpbWQiLCJzY29wZSI6InBv" \
    "c3RzOnJlYWQgZHJhZnRzOmNyZWF0ZSIsIndzIjoid3MtMSIsImdpZCI6ImdyYW50LTEiLCJjbHMiOiJhaSIsImlhdCI6" \
    "MTgwMDAwMDAwMCwibmJmIjoxODAwMDAwMDAwLCJleHAiOjE4MDAwMDA2MDAsImp0aSI6IkJwNjcwTjZ6V1RrSVZNOG0y" \
    "aFd0OEEifQ.KkkST-ScdDXeUOMc3u0OVYPFEsj55lCERkQRuC8Ha0BsyxVG2y98_"                             \
    "Wm950nuryO51UNqi7YlGWchvaJsvUbOzg"
