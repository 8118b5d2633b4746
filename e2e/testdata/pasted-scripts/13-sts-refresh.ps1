#! source: https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/disable-basic-authentication-in-exchange-online
#! match: StsRefreshTokensValidFrom : \d+/\d+/\d{4} \d+:\d\d:\d\d [AP]M
#! expect: set
Set-User -Identity akol@contoso.com -STSRefreshTokensValidFrom $([System.DateTime]::UtcNow)
if ((Get-User -Identity akol@contoso.com).StsRefreshTokensValidFrom -ne $null) { "set" }
Get-User -Identity akol@contoso.com | Format-List StsRefreshTokensValidFrom
