#! source: https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/disable-basic-authentication-in-exchange-online
#! expect: chris
#! reject: sean
New-AuthenticationPolicy -Name "Block Basic Auth"
Set-User -Identity chris@contoso.com -AuthenticationPolicy "Block Basic Auth"
Get-User -Filter "AuthenticationPolicy -eq 'Block Basic Auth'" | Format-Table Name, AuthenticationPolicy
