// Package look is what the project's HTML pages (the status page and the
// fleet page) share: their base style, and the hash that lets a strict
// Content-Security-Policy allow an inline style or script.
package look

import (
	"crypto/sha256"
	"encoding/base64"
)

// Base is the style both pages start from: colours for pass, warn and fail
// (light and dark), the type, the header, the tables and the reasons; each
// page adds its own rules after it, and its body's width.
const Base = `:root{color-scheme:light dark;--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--none:#8c959f}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:1rem}
h1{font-size:1.3rem;margin:0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline}
.pass,.ph-ready{color:var(--pass)}.warn,.ph-warming{color:var(--warn)}.fail,.ph-broken,.ph-draining,.ph-stopped{color:var(--fail)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #8884;vertical-align:top}
.reason{color:var(--none);font-size:.9em;word-break:break-word}
time{font-variant-numeric:tabular-nums}
@media (max-width:40rem){table,thead,tbody,tr,th,td{display:block}thead{display:none}tr{padding:.4rem 0}}
`

// Hash is the CSP source that allows exactly the inline style or script s:
// 'sha256-<base64 of its SHA-256>'.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
