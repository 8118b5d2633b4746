#! expect: total recipient limit: 2000
#! expect: average: 500
#! expect: as KB: 2,048,000
$total = 0
Get-Mailbox -ResultSize Unlimited | ForEach-Object { $total += $_.RecipientLimits }
"total recipient limit: $total"
"average: " + [math]::Round($total / (Get-Mailbox).Count, 2)
"as KB: {0:N0}" -f ($total * 1024)
