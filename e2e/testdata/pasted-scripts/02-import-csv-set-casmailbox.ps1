#! source: https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
#! expect: chris@contoso.com
#! expect: SmtpClientAuthenticationDisabled : False
# users.csv has a UserPrincipalName column, as exported from the Microsoft 365 admin center.
Import-Csv users.csv | ForEach-Object { Set-CASMailbox -Identity $_.UserPrincipalName -SmtpClientAuthenticationDisabled $false }
Get-CASMailbox -Identity chris@contoso.com | Format-List PrimarySmtpAddress, SmtpClientAuthenticationDisabled
