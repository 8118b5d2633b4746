#! expect: SmtpClientAuthenticationDisabled : False
$POSTERN Set-CASMailbox -Identity chris@contoso.com -SmtpClientAuthenticationDisabled '$false'
$POSTERN Get-CASMailbox -Identity chris@contoso.com '|' Format-List SmtpClientAuthenticationDisabled
