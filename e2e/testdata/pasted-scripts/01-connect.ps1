#! source: https://learn.microsoft.com/powershell/exchange/connect-to-exchange-online-powershell
#! stderr: WARNING: Connect-ExchangeOnline: Postern's shell is already connected to this server's admin service
#! expect: akol
#! expect: Info Desk
#! stderr: WARNING: Disconnect-ExchangeOnline
Import-Module ExchangeOnlineManagement
Connect-ExchangeOnline -UserPrincipalName admin@contoso.com -ShowBanner:$false
Get-Mailbox -ResultSize Unlimited | Format-Table Name, PrimarySmtpAddress
Disconnect-ExchangeOnline -Confirm:$false
