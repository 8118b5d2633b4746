#! source: https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
#! expect: akol False
#! expect: chris False
$Allow = Get-Content "allow.txt"
$Allow | foreach {Set-CASMailbox -Identity $_ -SmtpClientAuthenticationDisabled $false}
Get-CASMailbox -ResultSize unlimited | Where-Object { $_.PrimarySmtpAddress -in $Allow } | Sort-Object Name | ForEach-Object { "$($_.Name) $($_.SmtpClientAuthenticationDisabled)" }
